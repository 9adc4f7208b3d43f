//! One error type for the API: each variant is one status and one JSON shape,
//! `{"error": {"code", "message", "fields"?}}`, with messages from the catalogue.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kite_domain::FieldErrors;
use kite_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::i18n::{self, Lang};

#[derive(Debug)]
pub enum ApiError {
    /// 400 with a code (malformed JSON, path or query).
    BadRequest(&'static str),
    /// 400 naming the fields at fault.
    Invalid(FieldErrors),
    Unauthorized(&'static str),
    Forbidden,
    /// 403: the account's password was set by an administrator and must be changed first.
    PasswordChangeRequired,
    /// 403: an unsafe browser request without this session's CSRF token.
    Csrf,
    NotFound,
    /// 404 with a more specific code (an unknown check-in link).
    Missing(&'static str),
    Conflict(&'static str),
    MethodNotAllowed,
    /// 429 with a code: `throttled` (logins) or `otp.too_soon`.
    Throttled(&'static str),
    /// 503 with a code: nothing was stored, and the same request may be sent again.
    Unavailable(&'static str),
    Internal,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_input`, `stale_version`.
    pub code: String,
    /// Human-readable message in the request's language.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldMessage>>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldMessage {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Forbidden => ApiError::Forbidden,
            StoreError::Conflict(c) => ApiError::Conflict(c),
            StoreError::Invalid(f) => ApiError::Invalid(f),
            StoreError::Throttled => ApiError::Throttled("otp.too_soon"),
            StoreError::NotStored(why) => {
                tracing::warn!(reason = %why, "check-in not stored");
                ApiError::Unavailable("checkin.not_stored")
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::Internal
            }
        }
    }
}

impl ApiError {
    /// 400 naming one field.
    pub fn field(field: &'static str, code: &'static str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, code);
        ApiError::Invalid(e)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf | ApiError::PasswordChangeRequired => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(c)
            | ApiError::Unauthorized(c)
            | ApiError::Conflict(c)
            | ApiError::Missing(c)
            | ApiError::Throttled(c)
            | ApiError::Unavailable(c) => c,
            ApiError::Invalid(_) => "invalid_input",
            ApiError::Forbidden => "forbidden",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::Csrf => "csrf",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal => "internal",
        }
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        let fields = match self {
            ApiError::Invalid(f) => Some(
                f.0.iter()
                    .map(|e| FieldMessage {
                        field: e.field.into(),
                        code: e.code.into(),
                        message: i18n::err(lang, e.code),
                    })
                    .collect(),
            ),
            _ => None,
        };
        ErrorBody { error: ErrorDetail { code: self.code().into(), message: i18n::err(lang, self.code()), fields } }
    }

    /// The response in a given language (the handler knows the request's).
    pub fn respond(self, lang: Lang) -> Response {
        (self.status(), axum::Json(self.body(lang))).into_response()
    }
}

impl IntoResponse for ApiError {
    /// Without a request at hand the message is Chinese; [`crate::api::LangLayer`]
    /// rewrites it to the request's language.
    fn into_response(self) -> Response {
        let status = self.status();
        let mut r = (status, axum::Json(self.body(Lang::Zh))).into_response();
        r.extensions_mut().insert(ErrorMarker::from(self));
        r
    }
}

/// Carries the error on the response so the language layer can re-render it.
#[derive(Clone)]
pub(crate) struct ErrorMarker(pub(crate) std::sync::Arc<ApiError>);

impl From<ApiError> for ErrorMarker {
    fn from(e: ApiError) -> Self {
        ErrorMarker(std::sync::Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_in_not_stored_is_a_retryable_503_with_its_message() {
        let e = ApiError::from(StoreError::NotStored("the check-in queue is full".into()));
        assert_eq!((e.status(), e.code()), (StatusCode::SERVICE_UNAVAILABLE, "checkin.not_stored"));
        let body = e.body(Lang::Zh);
        assert!(body.error.message.contains("再次提交"), "{}", body.error.message);
    }
}
