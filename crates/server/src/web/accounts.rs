//! Account pages: the accounts of the administrator's subtree with the form for a new one,
//! password resets and disabling; and everyone's own password.

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kite_domain::Role;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, render, settle, show, Form, PageLang, Path, Viewer};
use crate::api::accounts::{change_own, set_password, AccountBody};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list).post(create))
        .route("/accounts/{id}/password", post(reset))
        .route("/accounts/{id}/status", post(status))
        .route("/me/password", get(own_form).post(own))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    #[serde(flatten)]
    body: AccountForm2,
}

/// The account form's fields as typed (the member id as text).
#[derive(Deserialize, Default, serde::Serialize, Clone)]
#[serde(default)]
struct AccountForm2 {
    username: String,
    password: String,
    role: String,
    org_code: String,
    service_point_code: String,
    member_id: String,
    display_name: String,
}

impl AccountForm2 {
    fn body(&self) -> Result<AccountBody, ApiError> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let member_id = match self.member_id.trim() {
            "" => None,
            s => Some(s.parse().map_err(|_| ApiError::field("member_id", "invalid"))?),
        };
        Ok(AccountBody {
            username: self.username.clone(),
            password: self.password.clone(),
            role: self.role.clone(),
            org_code: some(&self.org_code),
            service_point_code: some(&self.service_point_code),
            member_id,
            display_name: some(&self.display_name),
        })
    }
}

async fn list_page(state: &AppState, lang: Lang, who: &Authed, f: &AccountForm2, e: Option<ApiError>) -> Response {
    let roles: Vec<&str> = Role::ALL.into_iter().filter(|r| who.user.role.may_grant(*r)).map(Role::code).collect();
    match who.guard(state).accounts().await {
        Ok(items) => {
            // The password typed is never sent back.
            let f = AccountForm2 { password: String::new(), ..f.clone() };
            let ctx = context! { items, roles, f => Value::from_serialize(&f), me => who.user.id };
            show(state, lang, who, "accounts.html", ctx, e)
        }
        Err(e) => error_page(state, lang, who, e.into()),
    }
}

async fn list(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    let f = AccountForm2 {
        role: "secretary".into(),
        org_code: who.user.org_code.clone().unwrap_or_default(),
        ..Default::default()
    };
    list_page(&state, lang, &who, &f, None).await
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<AccountForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        let new = f.body.body()?.new_user().await?;
        Ok::<_, ApiError>(who.guard(&state).account_create(&new).await?)
    }
    .await;
    let to = result.as_ref().map(|u| format!("/accounts#account-{}", u.id)).unwrap_or_default();
    settle(&state, lang, &who, result.map(|_| ()), &to, |e| list_page(&state, lang, &who, &f.body, Some(e))).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    csrf: String,
    password: String,
}

async fn reset(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        set_password(&state, &who, id, &f.password).await
    }
    .await;
    back(&state, lang, &who, id, result.map(|_| ())).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusForm {
    csrf: String,
    disabled: String,
}

async fn status(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<StatusForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        Ok::<_, ApiError>(who.guard(&state).account_set_disabled(id, f.disabled == "true").await?)
    }
    .await;
    back(&state, lang, &who, id, result.map(|_| ())).await
}

/// Back to the list at the account, or the list with the message.
async fn back(state: &AppState, lang: Lang, who: &Authed, id: i64, r: Result<(), ApiError>) -> Response {
    let blank = AccountForm2::default();
    let again = |e| list_page(state, lang, who, &blank, Some(e));
    settle(state, lang, who, r, &format!("/accounts#account-{id}"), again).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OwnForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

async fn own_form(State(state): State<AppState>, PageLang(lang): PageLang, Viewer(who): Viewer) -> Response {
    render(&state, "password.html", lang, Some(&who), context! { done => false })
}

async fn own(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<OwnForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        change_own(&state, &who, &f.current_password, &f.new_password).await
    }
    .await;
    match result {
        Ok(()) => render(&state, "password.html", lang, Some(&who), context! { done => true }),
        Err(e) => form_again(&state, lang, &who, "password.html", context! { done => false }, e),
    }
}
