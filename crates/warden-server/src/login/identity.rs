//! From a verified ID token to a person in Warden's terms: the subject,
//! the roles mapped from the provider's groups, and the rules that refuse
//! someone (an email domain not allowed, an unverified email used as the
//! subject). Pure: no I/O.

use serde_json::{Map, Value};

use crate::options::{LoginProvider, SubjectForm};

/// A person the provider vouched for, in Warden's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `user:<email>` or `user:<sub>`, canonical.
    pub subject: String,
    /// Roles from the provider's groups plus the provider's default roles.
    pub roles: Vec<String>,
    /// The verified email, if the token carried one.
    pub email: Option<String>,
}

/// Why a verified ID token does not let its person in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No usable `sub`.
    #[error("the ID token has no usable `sub`")]
    NoSubject,
    /// The subject is the email, and there is no verified one.
    #[error("the provider did not vouch for an email address (`email_verified` is not true)")]
    UnverifiedEmail,
    /// The email's domain is not allowed.
    #[error("the email domain `{0}` may not sign in")]
    Domain(String),
    /// The subject would not be a valid Warden subject.
    #[error("the subject `{0}` is not valid in Warden")]
    BadSubject(String),
}

/// The person `claims` (of an ID token verified for `provider`) name.
pub fn person(provider: &LoginProvider, claims: &Map<String, Value>) -> Result<Person, Refusal> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255 && !s.contains(char::is_control))
        .ok_or(Refusal::NoSubject)?;
    let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)));
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|_| verified)
        .map(str::to_ascii_lowercase);
    if !provider.allowed_domains.is_empty() {
        let Some(email) = &email else {
            return Err(Refusal::UnverifiedEmail);
        };
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        if !provider.allowed_domains.iter().any(|d| d == domain) {
            return Err(Refusal::Domain(domain.to_owned()));
        }
    }
    let name = match provider.subject {
        SubjectForm::Email => email.clone().ok_or(Refusal::UnverifiedEmail)?,
        SubjectForm::Sub => sub.to_owned(),
    };
    let subject = warden_registry::subject::canonical(&format!("user:{name}"));
    if subject.len() > 260 || subject.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return Err(Refusal::BadSubject(subject));
    }
    let mut roles: Vec<String> = Vec::new();
    let mut add = |role: &String| {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    };
    for group in groups(claims.get(&provider.groups_claim)) {
        if let Some(role) = provider.roles.get(group) {
            add(role);
        }
    }
    for role in &provider.default_roles {
        add(role);
    }
    Ok(Person { subject, roles, email })
}

/// A groups claim as a list: an array of strings, or one space-separated
/// string.
fn groups(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split(' ').filter(|g| !g.is_empty()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::options::{ClientSecret, ProviderAuth};

    fn provider(subject: SubjectForm, domains: &[&str]) -> LoginProvider {
        LoginProvider {
            name: "corp".into(),
            display_name: "Corp".into(),
            issuer: "https://idp.example".into(),
            client_id: "warden".into(),
            client_secret: ClientSecret(zeroize::Zeroizing::new("s".into())),
            auth: ProviderAuth::Basic,
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            roles: BTreeMap::from([
                ("ml-engineers".to_owned(), "ml-engineer".to_owned()),
                ("auditors".to_owned(), "auditor".to_owned()),
            ]),
            default_roles: vec!["employee".into()],
            allowed_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            subject,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn groups_map_to_roles_and_the_email_names_the_person() {
        let p = person(
            &provider(SubjectForm::Email, &["example.com"]),
            &claims(
                json!({"sub": "a1", "email": "Alice@Example.com", "email_verified": true,
                "groups": ["ml-engineers", "everyone", "ml-engineers"]}),
            ),
        )
        .unwrap();
        assert_eq!(p.subject, "user:alice@example.com");
        assert_eq!(p.roles, ["ml-engineer", "employee"]);
    }

    #[test]
    fn the_sub_form_ignores_the_email() {
        let p = person(
            &provider(SubjectForm::Sub, &[]),
            &claims(json!({"sub": "00u1ab", "groups": "auditors other"})),
        )
        .unwrap();
        assert_eq!(p.subject, "user:00u1ab");
        assert_eq!(p.roles, ["auditor", "employee"]);
        assert_eq!(p.email, None);
    }

    #[test]
    fn refusals() {
        let corp = provider(SubjectForm::Email, &["example.com"]);
        let refuse = |v: Value| person(&corp, &claims(v)).unwrap_err();
        assert_eq!(
            refuse(json!({"sub": "c", "email": "c@other.example", "email_verified": true})),
            Refusal::Domain("other.example".into())
        );
        assert_eq!(
            refuse(json!({"sub": "d", "email": "d@example.com", "email_verified": false})),
            Refusal::UnverifiedEmail
        );
        assert_eq!(
            refuse(json!({"sub": "d", "email": "d@example.com", "email_verified": "true"})),
            Refusal::UnverifiedEmail,
            "a string is not a boolean"
        );
        assert_eq!(
            refuse(json!({"email": "x@example.com", "email_verified": true})),
            Refusal::NoSubject
        );
        assert_eq!(refuse(json!({"sub": "", "email_verified": true})), Refusal::NoSubject);
        // Unverified email with the sub form and no domain rule: fine.
        let open = provider(SubjectForm::Sub, &[]);
        assert!(person(&open, &claims(json!({"sub": "x", "email": "x@evil.example"}))).is_ok());
        // A domain rule needs a verified email even with the sub form.
        let strict = provider(SubjectForm::Sub, &["example.com"]);
        assert_eq!(
            person(&strict, &claims(json!({"sub": "x", "email": "x@example.com"}))).unwrap_err(),
            Refusal::UnverifiedEmail
        );
    }
}
