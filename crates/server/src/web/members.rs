//! Members: search, detail, registration, editing, departures and the change history.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use kite_domain::flow::validate_departure;
use kite_domain::member;
use kite_domain::{Action, Education, FlowReason, Gender, MemberCategory, Mobility, ETHNICITIES};
use kite_store::MemberQuery;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{error_page, form_again, next_page_link, render, Form, PageLang, Path, Query, Viewer};
use crate::api::members::{DepartureBody, MemberBody};
use crate::error::ApiError;
use crate::i18n::{self, Lang};
use crate::{rules, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/members", get(list))
        .route("/members/new", get(new_form).post(create))
        .route("/members/{id}", get(detail))
        .route("/members/{id}/edit", get(edit_form).post(update))
        .route("/members/{id}/depart", get(departure_form).post(depart))
        .route("/members/{id}/audit", get(audit))
}

async fn list(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<MemberQuery>,
) -> Response {
    match who.guard(&state).members(&q).await {
        Ok(page) => {
            let filters = [("q", &q.q), ("org", &q.org), ("mobility", &q.mobility)];
            let next_link = next_page_link("/members", &filters, page.next_cursor.as_deref());
            let mobilities: Vec<&str> = Mobility::ALL.iter().map(|m| m.code()).collect();
            let query = context! { q => q.q, org => q.org, mobility => q.mobility };
            render(&state, "members.html", lang, Some(&who), context! { page, query, mobilities, next_link })
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
    let g = who.guard(&state);
    let result = async {
        Ok::<_, kite_store::StoreError>((
            g.member(id).await?,
            g.member_flows(id).await?,
            g.member_evaluations(id).await?,
            g.member_certificates(id).await?,
            g.member_arrival(id).await?,
            // The outflow side's note; a member's own page does not show it.
            match who.user.role.may(Action::ReadFlows) {
                true => g.member_screening_found(id).await?,
                false => Vec::new(),
            },
        ))
    }
    .await;
    match result {
        Ok((m, flows, evaluations, certificates, arrival, found)) => {
            let away = flows.iter().any(|f| f.status.is_open());
            let ctx = context! { m, flows, away, evaluations, certificates, arrival, found };
            render(&state, "member.html", lang, Some(&who), ctx)
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(flatten)]
    body: MemberBody,
    #[serde(flatten)]
    arrival: ArrivalFields,
}

/// A new member's record arriving from outside the system: the letter they brought.
#[derive(Deserialize, serde::Serialize, Default)]
#[serde(default)]
struct ArrivalFields {
    /// "1" when the form registers an arrival.
    from_outside: String,
    from_org_text: String,
    letter_number: String,
    letter_date: String,
    note: String,
}

impl ArrivalFields {
    fn is_arrival(&self) -> bool {
        self.from_outside == "1"
    }
}

/// The new-member form, with the arrival's part when it registers one.
fn new_context(lang: Lang, v: &MemberBody, a: &ArrivalFields) -> Value {
    let title = if a.is_arrival() { "members.arrival" } else { "members.new" };
    let base = form_context(lang, v, "/members/new".into(), title);
    context! { ..base, ..context! { arrival => Value::from_serialize(a), from_outside => a.is_arrival() } }
}

fn form_context(lang: Lang, v: &MemberBody, action: String, title_key: &str) -> Value {
    context! {
        title => i18n::t(lang, title_key),
        action,
        v => Value::from_serialize(v),
        genders => Gender::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        educations => Education::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        categories => MemberCategory::ALL.iter().map(|g| g.code()).collect::<Vec<_>>(),
        ethnicities => ETHNICITIES.to_vec(),
    }
}

#[derive(Deserialize)]
struct NewQuery {
    org: Option<String>,
    /// `1`: a member arriving from outside the system with a letter.
    from_outside: Option<String>,
}

async fn new_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Query(q): Query<NewQuery>,
) -> Response {
    let g = who.guard(&state);
    let allowed = match q.org.as_deref().filter(|o| !o.is_empty()) {
        Some(org) => g.org_for(org, Action::WriteMember).await.map(|_| ()),
        None => g.require(Action::WriteMember).await,
    };
    if let Err(e) = allowed {
        return error_page(&state, lang, &who, e.into());
    }
    let v = MemberBody {
        org_code: q.org.unwrap_or_default(),
        ethnicity: ETHNICITIES[0].into(),
        category: MemberCategory::Full.code().into(),
        ..Default::default()
    };
    let a = ArrivalFields { from_outside: q.from_outside.unwrap_or_default(), ..Default::default() };
    render(&state, "member_form.html", lang, Some(&who), new_context(lang, &v, &a))
}

async fn create(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Form(f): Form<MemberForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    let result = async {
        if !f.arrival.is_arrival() {
            let fields = member::validate(&f.body.input(), &rules::Ctx).map_err(ApiError::Invalid)?;
            return Ok::<_, ApiError>(who.guard(&state).member_create(fields).await?);
        }
        let a = &f.arrival;
        let body = crate::api::transfers::ArrivalBody {
            member: f.body.clone(),
            from_org_text: a.from_org_text.clone(),
            letter_number: a.letter_number.clone(),
            letter_date: a.letter_date.clone(),
            note: a.note.clone(),
        };
        let (fields, arrival) = body.validate()?;
        Ok(who.guard(&state).member_arrive(fields, &arrival).await?.0)
    }
    .await;
    match result {
        Ok(m) => Redirect::to(&format!("/members/{}", m.id)).into_response(),
        Err(e) => form_again(&state, lang, &who, "member_form.html", new_context(lang, &f.body, &f.arrival), e),
    }
}

async fn edit_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    let g = who.guard(&state);
    // Ask before the full number is read (and its view audited) for someone who cannot save.
    let result = async {
        g.member_for(id, Action::WriteMember).await?;
        g.member(id).await
    }
    .await;
    match result {
        Ok(m) => {
            let ctx =
                form_context(lang, &MemberBody::from_member(&m), format!("/members/{id}/edit"), "member.edit_title");
            render(&state, "member_form.html", lang, Some(&who), ctx)
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn update(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(mut f): Form<MemberForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    f.body.version = f.version.trim().parse().ok();
    let result = async {
        let fields = member::validate(&f.body.input(), &rules::Ctx).map_err(ApiError::Invalid)?;
        let version = f.body.version.ok_or(ApiError::Conflict("stale_version"))?;
        Ok::<_, ApiError>(who.guard(&state).member_update(id, fields, version).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/members/{id}")).into_response(),
        Err(e) => {
            let ctx = form_context(lang, &f.body, format!("/members/{id}/edit"), "member.edit_title");
            form_again(&state, lang, &who, "member_form.html", ctx, e)
        }
    }
}

#[derive(Deserialize)]
struct DepartureForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    body: DepartureBody,
}

fn departure_context(m: &kite_store::Member, v: &DepartureBody) -> Value {
    context! {
        m => Value::from_serialize(m),
        v => Value::from_serialize(v),
        reasons => FlowReason::ALL.iter().map(|r| r.code()).collect::<Vec<_>>(),
    }
}

async fn departure_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    match who.guard(&state).member_for(id, Action::WriteMember).await {
        Ok(m) => {
            let v = DepartureBody {
                reason: FlowReason::Work.code().into(),
                left_on: rules::today().to_string(),
                contact_phone: m.phone.clone().unwrap_or_default(),
                ..Default::default()
            };
            render(&state, "departure_form.html", lang, Some(&who), departure_context(&m, &v))
        }
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}

async fn depart(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
    Form(f): Form<DepartureForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&f.csrf) {
        return error_page(&state, lang, &who, e);
    }
    let g = who.guard(&state);
    let m = match g.member_for(id, Action::WriteMember).await {
        Ok(m) => m,
        Err(e) => return error_page(&state, lang, &who, e.into()),
    };
    let result = async {
        let d = validate_departure(&f.body.input(), rules::division_known, m.joined_on, rules::today())
            .map_err(ApiError::Invalid)?;
        Ok::<_, ApiError>(g.record_departure(id, d).await?)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/members/{id}")).into_response(),
        Err(e) => form_again(&state, lang, &who, "departure_form.html", departure_context(&m, &f.body), e),
    }
}

async fn audit(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Response {
    let g = who.guard(&state);
    let result = async {
        Ok::<_, kite_store::StoreError>((g.member_for(id, Action::WriteMember).await?, g.member_audit(id).await?))
    }
    .await;
    match result {
        Ok((m, entries)) => render(&state, "member_audit.html", lang, Some(&who), context! { m, entries }),
        Err(e) => error_page(&state, lang, &who, e.into()),
    }
}
