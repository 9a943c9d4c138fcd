//! `verify_log` on a synthetic export of 100 access decisions with signed
//! checkpoints at sizes 0, 1, 10, 37, 64, 64 and 100: the intact log passes,
//! erased bodies are counted and not called tampering, and each kind of
//! damage (altered body or salt, deleted, swapped or reordered rows, cut
//! tail, replaced or reordered checkpoints, another log's checkpoint) is
//! reported at the right index or checkpoint. Last, every checkpoint size
//! from 0 to 130 exercises the streamed consistency proofs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use support::{ORIGIN, SyntheticLog};
use warden_audit::{
    AuditError, Checkpoint, CheckpointProblem, EntryProblem, Frontier, NoteSigner, Record, VerifyReport, verify_log,
};

const SIZES: [u64; 7] = [0, 1, 10, 37, 64, 64, 100];

fn log() -> SyntheticLog {
    SyntheticLog::new(100, &SIZES)
}

fn run(log: &SyntheticLog, records: Vec<Record>) -> Result<VerifyReport, AuditError> {
    verify_log(records, &log.checkpoints, &log.verifier(), ORIGIN)
}

fn entry_error(index: u64, problem: EntryProblem) -> Result<VerifyReport, AuditError> {
    Err(AuditError::Entry { index, problem })
}

#[test]
fn intact_log_verifies() {
    let log = log();
    let report = run(&log, log.records.clone()).unwrap();
    assert_eq!(report.leaves, 100);
    assert_eq!(report.erased, 0);
    assert_eq!(report.checkpoints, SIZES.len());
    let mut frontier = Frontier::new();
    log.records.iter().for_each(|r| frontier.push(r.leaf_hash).unwrap());
    assert_eq!(report.root, frontier.root());
}

#[test]
fn erased_bodies_are_counted_not_tampered() {
    let log = log();
    let mut records = log.records.clone();
    for i in [0, 7, 42, 99] {
        records[i].content = None;
    }
    let report = run(&log, records).unwrap();
    assert_eq!((report.leaves, report.erased), (100, 4));
}

#[test]
fn altered_body_byte_names_the_index() {
    let log = log();
    let mut records = log.records.clone();
    let (body, _) = records[42].content.as_mut().unwrap();
    let at = body.iter().position(|b| *b == b'j').unwrap();
    body[at] = b'k';
    assert_eq!(run(&log, records), entry_error(42, EntryProblem::Tampered));
}

#[test]
fn altered_salt_names_the_index() {
    let log = log();
    let mut records = log.records.clone();
    let (_, salt) = records[5].content.as_mut().unwrap();
    let mut bytes = *salt.as_bytes();
    bytes[0] ^= 1;
    *salt = warden_audit::Salt::from_bytes(bytes);
    assert_eq!(run(&log, records), entry_error(5, EntryProblem::Tampered));
}

#[test]
fn deleted_row_names_the_gap() {
    let log = log();
    let mut records = log.records.clone();
    records.remove(42);
    assert_eq!(
        run(&log, records),
        entry_error(42, EntryProblem::UnexpectedIndex { found: 43 })
    );
}

#[test]
fn swapped_rows_name_the_first_one_out_of_place() {
    let log = log();
    let mut records = log.records.clone();
    records.swap(42, 43);
    assert_eq!(
        run(&log, records),
        entry_error(42, EntryProblem::UnexpectedIndex { found: 43 })
    );
}

#[test]
fn duplicated_row_names_the_repeat() {
    let log = log();
    let mut records = log.records.clone();
    records.insert(11, records[10].clone());
    assert_eq!(
        run(&log, records),
        entry_error(11, EntryProblem::UnexpectedIndex { found: 10 })
    );
}

#[test]
fn reordered_rows_with_renumbered_indices_break_the_next_checkpoint() {
    // Rows 42 and 43 trade places and are renumbered: each body still
    // matches its leaf, but the tree is another one from index 42 on.
    let log = log();
    let mut records = log.records.clone();
    records.swap(42, 43);
    records[42].index = 42;
    records[43].index = 43;
    assert_eq!(
        run(&log, records),
        Err(AuditError::Checkpoint {
            position: 4,
            size: 64,
            problem: CheckpointProblem::RootMismatch { verified_up_to: 37 }
        })
    );
}

#[test]
fn erased_row_with_altered_leaf_hash_breaks_the_next_checkpoint() {
    let log = log();
    let mut records = log.records.clone();
    records[3].content = None;
    records[3].leaf_hash[0] ^= 0x80;
    assert_eq!(
        run(&log, records),
        Err(AuditError::Checkpoint {
            position: 2,
            size: 10,
            problem: CheckpointProblem::RootMismatch { verified_up_to: 1 }
        })
    );
}

#[test]
fn truncated_tail_names_the_first_missing_index() {
    let log = log();
    let mut records = log.records.clone();
    records.truncate(90);
    assert_eq!(
        run(&log, records),
        entry_error(90, EntryProblem::Missing { checkpoint_size: 100 })
    );
}

#[test]
fn checkpoint_signed_by_another_key_is_rejected() {
    let mut log = log();
    let intruder = NoteSigner::new(ORIGIN, support::key_pair()).unwrap();
    let cp = Checkpoint::open(&log.checkpoints[3], &log.verifier()).unwrap();
    log.checkpoints[3] = cp.sign(&intruder).unwrap();
    let err = run(&log, log.records.clone()).unwrap_err();
    match err {
        AuditError::CheckpointRejected { position: 3, source } => {
            assert!(matches!(*source, AuditError::NotSignedByKey { .. }), "{source}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn altered_checkpoint_text_is_rejected() {
    let mut log = log();
    log.checkpoints[2] = log.checkpoints[2].replacen("\n10\n", "\n11\n", 1);
    let err = run(&log, log.records.clone()).unwrap_err();
    assert!(
        matches!(err, AuditError::CheckpointRejected { position: 2, .. }),
        "{err}"
    );
}

#[test]
fn checkpoint_of_a_forked_log_is_caught_at_its_size() {
    // The log's own key signed a checkpoint of another history of 64 leaves.
    let mut log = log();
    let mut fork = Frontier::new();
    for (i, r) in log.records[..64].iter().enumerate() {
        fork.push(if i == 50 {
            warden_audit::merkle::leaf_hash(b"another event")
        } else {
            r.leaf_hash
        })
        .unwrap();
    }
    log.checkpoints[4] = Checkpoint::new(ORIGIN, 64, fork.root()).sign(&log.signer).unwrap();
    assert_eq!(
        run(&log, log.records.clone()),
        Err(AuditError::Checkpoint {
            position: 4,
            size: 64,
            problem: CheckpointProblem::RootMismatch { verified_up_to: 37 }
        })
    );
}

#[test]
fn checkpoints_out_of_order_are_refused() {
    let mut log = log();
    log.checkpoints.swap(2, 3);
    assert_eq!(
        run(&log, log.records.clone()),
        Err(AuditError::Checkpoint {
            position: 3,
            size: 10,
            problem: CheckpointProblem::OutOfOrder { previous: 37 }
        })
    );
}

#[test]
fn checkpoint_of_another_origin_is_refused() {
    let mut log = log();
    let cp = Checkpoint::open(&log.checkpoints[1], &log.verifier()).unwrap();
    let moved = Checkpoint {
        origin: "elsewhere.example/log".into(),
        ..cp
    };
    log.checkpoints[1] = moved.sign(&log.signer).unwrap();
    let err = run(&log, log.records.clone()).unwrap_err();
    assert!(
        matches!(&err, AuditError::Checkpoint { position: 1, size: 1, problem: CheckpointProblem::WrongOrigin { found } } if found == "elsewhere.example/log"),
        "{err}"
    );
}

#[test]
fn errors_read_well() {
    let err = AuditError::Entry {
        index: 42,
        problem: EntryProblem::Tampered,
    };
    assert_eq!(
        err.to_string(),
        "log entry 42: body and salt do not hash to the stored leaf hash"
    );
    let err = AuditError::Entry {
        index: 90,
        problem: EntryProblem::Missing { checkpoint_size: 100 },
    };
    assert_eq!(
        err.to_string(),
        "log entry 90: missing from the export, but a checkpoint of size 100 covers it"
    );
}

#[test]
fn consistency_is_proved_between_every_pair_of_consecutive_sizes() {
    let every: Vec<u64> = (0..=130).collect();
    let log = SyntheticLog::new(130, &every);
    assert_eq!(run(&log, log.records.clone()).unwrap().checkpoints, 131);
    let sparse = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127, 128, 129, 130];
    let log = SyntheticLog::new(130, &sparse);
    assert_eq!(run(&log, log.records.clone()).unwrap().checkpoints, sparse.len());
    for (m, n) in [(1, 130), (2, 130), (5, 6), (63, 65), (64, 128), (65, 127)] {
        let log = SyntheticLog::new(130, &[m, n]);
        run(&log, log.records.clone()).unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
    }
}

#[test]
fn empty_log_verifies_against_an_empty_checkpoint() {
    let log = SyntheticLog::new(0, &[0]);
    let report = run(&log, Vec::new()).unwrap();
    assert_eq!(
        (report.leaves, report.checkpoints, report.root),
        (0, 1, warden_audit::empty_root())
    );
}
