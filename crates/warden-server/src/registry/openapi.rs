//! The registry API's OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` annotations and the registry types' schemas, served
//! at `GET /api/v1/openapi.json` (no token needed: it describes, it does
//! not disclose).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{datasets, lineage, models, promotions};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // What every operation may answer, whatever it does.
        let common = [
            (
                "400",
                "Malformed request: the description names the field (RFC 6749 error body)",
            ),
            (
                "401",
                "No valid Warden access token (RFC 6750 challenge in WWW-Authenticate)",
            ),
            ("413", "Body larger than 256 KiB"),
            (
                "503",
                "Storage or the audit log is unavailable; nothing was done (Retry-After)",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for op in operations.into_iter().flatten() {
                for (status, text) in common {
                    if status == "413" && op.request_body.is_none() {
                        continue;
                    }
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| utoipa::openapi::ResponseBuilder::new().description(text).into());
                }
            }
        }
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Warden governance registry API", description = "Datasets, models, lineage and four-eyes promotion. Every call needs a Warden access token (Bearer) and is decided by the Cedar policies and audited."),
    paths(
        datasets::create, datasets::list, datasets::show, datasets::update, datasets::delete,
        datasets::add_version, datasets::versions, datasets::version, datasets::impact,
        models::create, models::list, models::show, models::versions,
        models::add_version, models::version,
        models::set_stage, models::request_promotion, models::rollback, models::history,
        promotions::list, promotions::show, promotions::approve, promotions::reject,
        lineage::walk,
    ),
    components(schemas(
        warden_registry::Dataset, warden_registry::DatasetSpec, warden_registry::DatasetPatch,
        warden_registry::DatasetVersion, warden_registry::DatasetVersionSpec, warden_registry::Classification,
        warden_registry::Model, warden_registry::ModelSpec, warden_registry::ModelVersion,
        warden_registry::ModelVersionSpec, warden_registry::Stage, warden_registry::PromotionRequest,
        warden_registry::RequestStatus, warden_registry::Ballot, warden_registry::Vote, warden_registry::Edge,
        warden_registry::NodeRef, models::StageBody, promotions::VoteBody,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "datasets"), (name = "models"), (name = "promotions"), (name = "lineage")),
)]
pub struct RegistryApi;

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(RegistryApi::openapi())
}
