use kite_divisions::Division;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::Query;

#[derive(Deserialize, IntoParams)]
pub struct DivisionQuery {
    /// Children of this division code; omit for the provinces.
    pub parent: Option<String>,
    /// Search by name instead (e.g. `灌南`).
    pub q: Option<String>,
}

/// GB/T 2260 administrative divisions (province, prefecture, county, street).
#[utoipa::path(get, path = "/api/v1/divisions", tag = "divisions", security(()), params(DivisionQuery),
    responses((status = 200, description = "Divisions: code, name, level")))]
pub async fn list(Query(q): Query<DivisionQuery>) -> axum::Json<Vec<Division>> {
    let items = match (q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()), q.parent.as_deref()) {
        (Some(text), _) => kite_divisions::search(text, 30),
        (None, parent) => kite_divisions::children(parent.unwrap_or("").trim()),
    };
    axum::Json(items)
}
