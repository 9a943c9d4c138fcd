//! The dashboard's form bodies: every state-changing page posts an
//! urlencoded form, read here with one size cap.

use crate::error::ApiError;
use crate::http::read_body;

/// Largest form read.
const MAX_FORM: usize = 16 * 1024;

/// The fields of an urlencoded form body, or 400/413.
pub async fn read_form(body: axum::body::Body) -> Result<Vec<(String, String)>, ApiError> {
    let bytes = read_body(body, MAX_FORM).await?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// The value of field `name` (the first one).
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
