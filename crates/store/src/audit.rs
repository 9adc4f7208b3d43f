//! The audit log: who, when, from where, what, before and after.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{exec, on, StoreError, Tx};

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub client: Option<String>,
    pub action: String,
    /// `ok` or `denied`.
    pub outcome: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub before_data: Option<String>,
    pub after_data: Option<String>,
}

/// One audit record to write.
pub(crate) struct Record<'a> {
    pub user_id: Option<i64>,
    pub username: Option<&'a str>,
    pub client: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub(crate) async fn write(tx: &mut Tx, r: Record<'_>) -> Result<(), StoreError> {
    write_many(tx, vec![r]).await
}

/// Writes records with one multi-row statement (per [`crate::db::ROWS_PER_STATEMENT`]).
pub(crate) async fn write_many(tx: &mut Tx, records: Vec<Record<'_>>) -> Result<(), StoreError> {
    const COLS: usize = 10;
    let at = Utc::now();
    let rows: Vec<_> = records.into_iter().map(stored).collect();
    for chunk in rows.chunks(crate::db::ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO audit_log (at, user_id, username, client, action, outcome, target_type, target_id, \
             before_data, after_data) VALUES {}",
            crate::db::values_rows(chunk.len(), COLS)
        );
        exec!(&mut *tx, {
            let mut q = sqlx::query(&sql);
            for (r, before, after) in chunk {
                q = q
                    .bind(at)
                    .bind(r.user_id)
                    .bind(r.username)
                    .bind(r.client)
                    .bind(r.action)
                    .bind(r.outcome)
                    .bind(r.target_type)
                    .bind(&r.target_id)
                    .bind(before)
                    .bind(after);
            }
            q
        })?;
    }
    Ok(())
}

pub(crate) async fn for_target(tx: &mut Tx, ttype: &str, tid: &str, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, at, user_id, username, client, action, outcome, target_type, target_id, before_data, after_data \
         FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY id DESC LIMIT $3")
        .bind(ttype).bind(tid).bind(limit).fetch_all(c).await)?)
}

pub(crate) async fn recent(tx: &mut Tx, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT id, at, user_id, username, client, action, outcome, target_type, target_id, before_data, after_data \
         FROM audit_log ORDER BY id DESC LIMIT $1")
        .bind(limit).fetch_all(c).await)?)
}

/// A record with its before and after as stored: masked JSON text.
pub(crate) fn stored(mut r: Record<'_>) -> (Record<'_>, Option<String>, Option<String>) {
    let before = r.before.take().map(|v| mask_ids(v).to_string());
    let after = r.after.take().map(|v| mask_ids(v).to_string());
    (r, before, after)
}

/// The audit log is read by more people than may see identity numbers: keep them masked.
fn mask_ids(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::String(id)) = obj.get("id_number") {
            let masked = kite_domain::id_number::mask(id);
            obj.insert("id_number".into(), Value::String(masked));
        }
        // The mask hides the birth date digits; the date itself would give them back.
        if let Some(Value::String(date)) = obj.get("birth_date") {
            let year: String = date.chars().take(4).collect();
            obj.insert("birth_date".into(), Value::String(format!("{year}-**-**")));
        }
    }
    v
}

/// The fields that differ between two snapshots, as `(before, after)` objects.
pub(crate) fn diff(before: &Value, after: &Value) -> (Value, Value) {
    let (mut b, mut a) = (serde_json::Map::new(), serde_json::Map::new());
    if let (Some(bo), Some(ao)) = (before.as_object(), after.as_object()) {
        for (k, av) in ao {
            let bv = bo.get(k).unwrap_or(&Value::Null);
            if bv != av && !matches!(k.as_str(), "version" | "updated_at") {
                b.insert(k.clone(), bv.clone());
                a.insert(k.clone(), av.clone());
            }
        }
    }
    (Value::Object(b), Value::Object(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_keeps_changed_fields_only() {
        let (b, a) = diff(
            &json!({"name": "张三", "phone": "1", "version": 1}),
            &json!({"name": "张三", "phone": "2", "version": 2}),
        );
        assert_eq!(b, json!({"phone": "1"}));
        assert_eq!(a, json!({"phone": "2"}));
    }

    #[test]
    fn identity_numbers_are_masked() {
        let v = mask_ids(json!({"id_number": "11010519491231002X"}));
        assert_eq!(v["id_number"], "110105********002X");
    }
}
