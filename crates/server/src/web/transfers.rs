//! Transfer pages: each side's queues, one transfer with its history and the caller's
//! steps, asking from a member's page, and the printable introduction letter.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kite_domain::access::Action;
use kite_domain::transfer::Status;
use kite_store::{TransferQueue, TransferRequest, TransferStepInput, TransferView};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, page_again, render, Form, PageLang, Path, Query, Viewer};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transfers", get(list))
        .route("/transfers/{id}", get(detail))
        .route("/transfers/{id}/steps", post(step))
        .route("/transfers/{id}/letter", get(letter))
        .route("/members/{id}/transfer", get(new_form).post(create))
        .route("/members/{id}/arrival-receipt", get(arrival_receipt))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    queue: String,
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    // The page opens on the queue to approve.
    let queue = TransferQueue::from_code(&q.queue).unwrap_or(TransferQueue::ToApprove);
    let g = who.guard(&state);
    let result = async {
        let items = g.transfers(queue).await?;
        // Arrivals from outside the system, with every transfer of the subtree.
        let arrivals = match queue == TransferQueue::All && who.user.role.may(Action::Transfer) {
            true => g.arrivals().await?,
            false => Vec::new(),
        };
        Ok::<_, kite_store::StoreError>((items, arrivals))
    }
    .await;
    match result {
        Ok((items, arrivals)) => {
            let queues = TransferQueue::ALL.map(TransferQueue::code);
            let ctx = context! { items, arrivals, queue => queue.code(), queues };
            render(&state, "transfers.html", lang, Some(&who), ctx)
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn detail(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).transfer(id).await {
        Ok(v) => {
            let f = StepForm { letter_days: state.store.letter_rules().default_days.to_string(), ..Default::default() };
            render(&state, "transfer.html", lang, Some(&who), detail_ctx(&v, &f))
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

fn detail_ctx(v: &TransferView, f: &StepForm) -> Value {
    let f = context! {
        reason => &f.reason, letter_days => &f.letter_days, letter_until => &f.letter_until,
        dues_paid_until => &f.dues_paid_until,
    };
    context! { v, tr => &v.transfer, f }
}

/// A step as the page posts it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct StepForm {
    csrf: String,
    step: String,
    version: String,
    reason: String,
    letter_days: String,
    letter_until: String,
    dues_paid_until: String,
}

impl StepForm {
    fn input(&self) -> Result<TransferStepInput, ApiError> {
        let version = super::form_version(&self.version)?;
        let letter_days = match self.letter_days.trim() {
            "" => None,
            d => Some(d.parse().map_err(|_| ApiError::field("letter_days", "transfer.letter_days_invalid"))?),
        };
        let letter_until = match self.letter_until.trim() {
            "" => None,
            d => Some(
                kite_domain::member::parse_date(d).ok_or_else(|| ApiError::field("letter_until", "invalid_date"))?,
            ),
        };
        Ok(TransferStepInput {
            step: self.step.clone(),
            version,
            reason: Some(self.reason.clone()),
            letter_days,
            letter_until,
            dues_paid_until: Some(self.dues_paid_until.clone()),
        })
    }
}

async fn step(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<StepForm>,
) -> Response {
    let result = async {
        who.check_csrf(&f.csrf)?;
        Ok::<_, ApiError>(who.guard(&state).transfer_step(id, &f.input()?).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/transfers/{id}")).into_response(),
        Err(e) => detail_again(&state, lang, &who, id, &f, e).await,
    }
}

/// A refused step: the transfer's page again with the message beside the form.
async fn detail_again(state: &AppState, lang: Lang, who: &Authed, id: i64, f: &StepForm, e: ApiError) -> Response {
    let reload = async { Ok(detail_ctx(&who.guard(state).transfer(id).await?, f)) };
    page_again(state, lang, who, "transfer.html", e, reload).await
}

async fn letter(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).transfer(id).await {
        // A letter is printed while it stands: not for a transfer refused, withdrawn or lapsed.
        Ok(v)
            if v.transfer.letter_number.is_some()
                && matches!(v.transfer.status, Status::Approved | Status::Received | Status::Done) =>
        {
            render(&state, "transfer_letter.html", lang, Some(&who), context! { tr => &v.transfer })
        }
        Ok(_) => error_page(&state, lang, &who, ApiError::Conflict("transfer.wrong_status")),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// The receipt sent back to the organization outside the system a member arrived from.
async fn arrival_receipt(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).member_arrival(id).await {
        Ok(Some(a)) => render(&state, "arrival_receipt.html", lang, Some(&who), context! { a }),
        Ok(None) => error_page(&state, lang, &who, ApiError::NotFound),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

/// Asking for a transfer, from a member's page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AskForm {
    csrf: String,
    to_org_code: String,
    to_org_text: String,
    reason: String,
}

fn ask_ctx(member_id: i64, name: &str, f: &AskForm) -> Value {
    context! { member_id, name, f => context! { to_org_code => &f.to_org_code, to_org_text => &f.to_org_text, reason => &f.reason } }
}

async fn new_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).transfer_subject(id).await {
        Ok(name) => render(&state, "transfer_form.html", lang, Some(&who), ask_ctx(id, &name, &AskForm::default())),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<AskForm>,
) -> Response {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let r = TransferRequest {
        member_id: id,
        to_org_code: text(&f.to_org_code),
        to_org_text: text(&f.to_org_text),
        reason: text(&f.reason),
    };
    let result = async {
        who.check_csrf(&f.csrf)?;
        Ok::<_, ApiError>(who.guard(&state).transfer_request(&r).await?)
    }
    .await;
    match result {
        Ok(v) => Redirect::to(&format!("/transfers/{}", v.transfer.id)).into_response(),
        Err(e) => {
            let name = who.guard(&state).transfer_subject(id).await.unwrap_or_default();
            form_again(&state, lang, &who, "transfer_form.html", ask_ctx(id, &name, &f), e)
        }
    }
}
