//! Member rows and search.

use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kite_domain::access::MemberScope;
use kite_domain::member::MemberFields;
use kite_domain::{id_number, org, text, Education, Gender, IdNumber, MemberCategory, Mobility};

use crate::db::{bind_args, Arg};
use crate::{exec, on, Member, MemberQuery, MemberSummary, NewMember, Org, Page, Store, StoreError, Tx};

const SELECT_MEMBER: &str = "SELECT m.id, m.name, m.gender, m.ethnicity, m.birth_date, m.id_number, m.phone, \
     m.education, m.joined_on, m.category, o.code AS org_code, o.name AS org_name, m.org_path, \
     m.residence_division, m.residence_address, m.employer, m.occupation, m.mobility, m.version, \
     m.created_at, m.updated_at FROM members m JOIN organizations o ON o.id = m.org_id";

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: i64,
    name: String,
    gender: String,
    ethnicity: String,
    birth_date: NaiveDate,
    id_number: String,
    phone: Option<String>,
    education: Option<String>,
    joined_on: NaiveDate,
    category: String,
    org_code: String,
    org_name: String,
    org_path: String,
    residence_division: Option<String>,
    residence_address: Option<String>,
    employer: Option<String>,
    occupation: Option<String>,
    mobility: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Config(format!("unexpected {what} {v:?} in the database"))
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            gender: Gender::from_code(&r.gender).ok_or_else(|| corrupt("gender", &r.gender))?,
            education: match r.education.as_deref() {
                None => None,
                Some(e) => Some(Education::from_code(e).ok_or_else(|| corrupt("education", e))?),
            },
            category: MemberCategory::from_code(&r.category).ok_or_else(|| corrupt("category", &r.category))?,
            mobility: Mobility::from_code(&r.mobility).ok_or_else(|| corrupt("mobility", &r.mobility))?,
            id: r.id,
            name: r.name,
            ethnicity: r.ethnicity,
            birth_date: r.birth_date,
            id_number: r.id_number,
            phone: r.phone,
            joined_on: r.joined_on,
            org_code: r.org_code,
            org_name: r.org_name,
            org_path: r.org_path,
            residence_division: r.residence_division,
            residence_address: r.residence_address,
            employer: r.employer,
            occupation: r.occupation,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    name: String,
    name_key: String,
    gender: String,
    birth_date: NaiveDate,
    id_number: String,
    phone: Option<String>,
    org_code: String,
    org_name: String,
    mobility: String,
}

impl TryFrom<SummaryRow> for MemberSummary {
    type Error = StoreError;
    fn try_from(r: SummaryRow) -> Result<Self, StoreError> {
        Ok(MemberSummary {
            gender: Gender::from_code(&r.gender).ok_or_else(|| corrupt("gender", &r.gender))?,
            mobility: Mobility::from_code(&r.mobility).ok_or_else(|| corrupt("mobility", &r.mobility))?,
            id_number_masked: id_number::mask(&r.id_number),
            id: r.id,
            name: r.name,
            birth_year: r.birth_date.year(),
            phone: r.phone,
            org_code: r.org_code,
            org_name: r.org_name,
        })
    }
}

pub(crate) async fn by_id(tx: &mut Tx, id: i64) -> Result<Option<Member>, StoreError> {
    let sql = format!("{SELECT_MEMBER} WHERE m.id = $1");
    let row: Option<MemberRow> = on!(tx, c => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?;
    row.map(Member::try_from).transpose()
}

pub(crate) async fn id_by_id_number(tx: &mut Tx, id_number: &str) -> Result<Option<i64>, StoreError> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT id FROM members WHERE id_number = $1")
        .bind(id_number).fetch_optional(c).await)?)
}

pub(crate) async fn insert(tx: &mut Tx, f: &MemberFields, org: &Org) -> Result<i64, StoreError> {
    if id_by_id_number(tx, f.id_number.as_str()).await?.is_some() {
        return Err(StoreError::Conflict("member.id_number.duplicate"));
    }
    let path = crate::orgs::lock_path(tx, org.id).await?;
    let now = Utc::now();
    let res = on!(tx, c => sqlx::query_scalar(
        "INSERT INTO members (name, name_key, gender, ethnicity, birth_date, id_number, phone, education, joined_on, \
         category, org_id, org_path, residence_division, residence_address, employer, occupation, mobility, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         'resident', $17, $17) RETURNING id")
        .bind(&f.name).bind(text::name_key(&f.name)).bind(f.gender.code()).bind(&f.ethnicity).bind(f.birth_date)
        .bind(f.id_number.as_str()).bind(&f.phone).bind(f.education.map(|e| e.code())).bind(f.joined_on)
        .bind(f.category.code()).bind(org.id).bind(&path).bind(&f.residence_division)
        .bind(&f.residence_address).bind(&f.employer).bind(&f.occupation).bind(now).fetch_one(c).await);
    let id: i64 = match res.map_err(StoreError::from) {
        // A concurrent insert of the same number got in first.
        Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict("member.id_number.duplicate")),
        r => r?,
    };
    crate::orgs::adjust_counts(tx, org.id, 1, 0, 0).await?;
    Ok(id)
}

/// Updates a member under optimistic concurrency, moving the formal record's
/// counter when the organization changes.
pub(crate) async fn update(
    tx: &mut Tx,
    before: &Member,
    f: &MemberFields,
    org: &Org,
    old_org_id: i64,
    version: i64,
) -> Result<(), StoreError> {
    if let Some(other) = id_by_id_number(tx, f.id_number.as_str()).await? {
        if other != before.id {
            return Err(StoreError::Conflict("member.id_number.duplicate"));
        }
    }
    let path = crate::orgs::lock_path(tx, org.id).await?;
    let n = exec!(tx, sqlx::query(
        "UPDATE members SET name = $1, name_key = $2, gender = $3, ethnicity = $4, birth_date = $5, id_number = $6, \
         phone = $7, education = $8, joined_on = $9, category = $10, org_id = $11, org_path = $12, \
         residence_division = $13, residence_address = $14, employer = $15, occupation = $16, \
         version = version + 1, updated_at = $17 WHERE id = $18 AND version = $19")
        .bind(&f.name).bind(text::name_key(&f.name)).bind(f.gender.code()).bind(&f.ethnicity).bind(f.birth_date)
        .bind(f.id_number.as_str()).bind(&f.phone).bind(f.education.map(|e| e.code())).bind(f.joined_on)
        .bind(f.category.code()).bind(org.id).bind(&path).bind(&f.residence_division)
        .bind(&f.residence_address).bind(&f.employer).bind(&f.occupation).bind(Utc::now())
        .bind(before.id).bind(version))?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    if old_org_id != org.id {
        crate::orgs::adjust_counts(tx, old_org_id, -1, 0, 0).await?;
        crate::orgs::adjust_counts(tx, org.id, 1, 0, 0).await?;
    }
    Ok(())
}

/// A record that left the system comes back at `org` with the fields as given now: resident,
/// counted again. Guarded by its state, so two arrivals at once bring it back once.
pub(crate) async fn readmit(tx: &mut Tx, id: i64, f: &MemberFields, org: &Org) -> Result<(), StoreError> {
    let path = crate::orgs::lock_path(tx, org.id).await?;
    let n = exec!(
        tx,
        sqlx::query(
            "UPDATE members SET name = $1, name_key = $2, gender = $3, ethnicity = $4, birth_date = $5, phone = $6, \
             education = $7, joined_on = $8, category = $9, org_id = $10, org_path = $11, residence_division = $12, \
             residence_address = $13, employer = $14, occupation = $15, mobility = 'resident', \
             version = version + 1, updated_at = $16 WHERE id = $17 AND mobility = 'transferred_out'"
        )
        .bind(&f.name)
        .bind(kite_domain::text::name_key(&f.name))
        .bind(f.gender.code())
        .bind(&f.ethnicity)
        .bind(f.birth_date)
        .bind(&f.phone)
        .bind(f.education.map(|e| e.code()))
        .bind(f.joined_on)
        .bind(f.category.code())
        .bind(org.id)
        .bind(&path)
        .bind(&f.residence_division)
        .bind(&f.residence_address)
        .bind(&f.employer)
        .bind(&f.occupation)
        .bind(chrono::Utc::now())
        .bind(id)
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("stale_version"));
    }
    crate::orgs::adjust_counts(tx, org.id, 1, 0, 0).await
}

pub(crate) async fn set_mobility(tx: &mut Tx, id: i64, m: Mobility) -> Result<(), StoreError> {
    exec!(
        tx,
        sqlx::query("UPDATE members SET mobility = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(m.code())
            .bind(Utc::now())
            .bind(id)
    )?;
    Ok(())
}

/// How the free text of a search is read.
#[derive(Debug, PartialEq)]
enum Text {
    IdNumber(String),
    Phone(String),
    /// Digits that begin an identity number (phones are found by the whole number).
    DigitsPrefix(String),
    Name(String),
}

fn classify(q: &str) -> Option<Text> {
    let q: String = q.chars().filter(|c| !c.is_whitespace() && !matches!(c, '-' | '\0')).collect();
    if q.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == 'x' || c == 'X');
    if digits(&q) && (q.len() == 18 || q.len() == 15) {
        return Some(Text::IdNumber(
            IdNumber::parse(&q).map(|i| i.as_str().to_string()).unwrap_or_else(|_| q.to_uppercase()),
        ));
    }
    if let Some(p) = kite_domain::validation::phone(&q) {
        return Some(Text::Phone(p));
    }
    if digits(&q) && q.len() >= 4 {
        return Some(Text::DigitsPrefix(q.to_uppercase()));
    }
    Some(Text::Name(text::name_key(&q)))
}

/// The indexed column a search is ordered by (then by id).
#[derive(Clone, Copy)]
enum Key {
    NameKey,
    IdNumber,
}

impl Key {
    fn column(self) -> &'static str {
        match self {
            Key::NameKey => "m.name_key",
            Key::IdNumber => "m.id_number",
        }
    }
}

/// Where a page ends: the last id, or the last value of the ordering key and its id.
enum Cursor {
    Id(i64),
    Key(String, i64),
}

fn encode_cursor(c: &Cursor) -> String {
    let raw = match c {
        Cursor::Id(id) => format!("i:{id}"),
        Cursor::Key(k, id) => format!("n:{id}:{k}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(s: &str) -> Result<Cursor, StoreError> {
    let bad = || StoreError::invalid("cursor", "invalid");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    if let Some(id) = raw.strip_prefix("i:") {
        return id.parse().map(Cursor::Id).map_err(|_| bad());
    }
    let rest = raw.strip_prefix("n:").ok_or_else(bad)?;
    let (id, key) = rest.split_once(':').ok_or_else(bad)?;
    if !crate::storable(key) {
        return Err(bad());
    }
    Ok(Cursor::Key(key.to_string(), id.parse().map_err(|_| bad())?))
}

pub const MAX_PAGE: u32 = 200;

/// Searches members visible under `scope`; `within` is the resolved `org` filter.
pub(crate) async fn search(
    tx: &mut Tx,
    scope: &MemberScope,
    q: &MemberQuery,
    within: Option<&Org>,
) -> Result<Page<MemberSummary>, StoreError> {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE) as i64;
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |conds: &mut Vec<String>, sql: &str, vals: Vec<Arg>| {
        let mut s = sql.to_string();
        for v in vals {
            args.push(v);
            s = s.replacen('?', &format!("${}", args.len()), 1);
        }
        conds.push(s);
    };
    match scope {
        MemberScope::All => {}
        MemberScope::Subtree(p) => {
            let (lo, hi) = org::subtree_range(p);
            push(&mut conds, "m.org_path >= ? AND m.org_path < ?", vec![Arg::Text(lo), Arg::Text(hi)]);
        }
        MemberScope::Only(id) => push(&mut conds, "m.id = ?", vec![Arg::Int(*id)]),
        MemberScope::Nothing => conds.push("1 = 0".into()),
    }
    if let Some(o) = within {
        let (lo, hi) = org::subtree_range(&o.path);
        push(&mut conds, "m.org_path >= ? AND m.org_path < ?", vec![Arg::Text(lo), Arg::Text(hi)]);
    }
    match q.mobility.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // Members transferred out of the system are listed only when asked for.
        None => conds.push("m.mobility <> 'transferred_out'".into()),
        Some("away") => conds.push("m.mobility IN ('not_checked_in', 'checked_in', 'lost_contact')".into()),
        Some(code) => {
            let m = Mobility::from_code(code).ok_or(StoreError::invalid("mobility", "invalid"))?;
            push(&mut conds, "m.mobility = ?", vec![Arg::Text(m.code().into())]);
        }
    }
    let text = q.q.as_deref().and_then(classify);
    // Name and digit searches read one index in its own order, so a page is that index's
    // next rows however many match (a county's code matches a third of a registry);
    // other lists go by id.
    let key = match text {
        Some(Text::Name(_)) => Some(Key::NameKey),
        Some(Text::DigitsPrefix(_)) => Some(Key::IdNumber),
        _ => None,
    };
    match text {
        None => {}
        Some(Text::IdNumber(id)) => push(&mut conds, "m.id_number = ?", vec![Arg::Text(id)]),
        Some(Text::Phone(p)) => push(&mut conds, "m.phone = ?", vec![Arg::Text(p)]),
        Some(Text::DigitsPrefix(d)) => {
            let hi = format!("{d}~");
            push(&mut conds, "m.id_number >= ? AND m.id_number < ?", vec![Arg::Text(d), Arg::Text(hi)]);
        }
        Some(Text::Name(k)) => {
            let hi = text::prefix_upper(&k);
            push(&mut conds, "m.name_key >= ? AND m.name_key < ?", vec![Arg::Text(k), Arg::Text(hi)]);
        }
    }
    match (q.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()?, key) {
        (None, _) => {}
        (Some(Cursor::Key(k, id)), Some(key)) => push(
            &mut conds,
            &format!("({col} > ? OR ({col} = ? AND m.id > ?))", col = key.column()),
            vec![Arg::Text(k.clone()), Arg::Text(k), Arg::Int(id)],
        ),
        (Some(Cursor::Id(id)), None) => push(&mut conds, "m.id > ?", vec![Arg::Int(id)]),
        (Some(_), _) => return Err(StoreError::invalid("cursor", "invalid")),
    }
    let order = key.map(|k| format!("{}, m.id", k.column())).unwrap_or_else(|| "m.id".into());
    let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    args.push(Arg::Int(limit + 1));
    let sql = format!(
        "SELECT m.id, m.name, m.name_key, m.gender, m.birth_date, m.id_number, m.phone, o.code AS org_code, \
         o.name AS org_name, m.mobility FROM members m JOIN organizations o ON o.id = m.org_id \
         {where_} ORDER BY {order} LIMIT ${}",
        args.len()
    );
    let mut rows: Vec<SummaryRow> = on!(tx, c => bind_args(sqlx::query_as(&sql), &args).fetch_all(c).await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            encode_cursor(&match key {
                Some(Key::NameKey) => Cursor::Key(r.name_key.clone(), r.id),
                Some(Key::IdNumber) => Cursor::Key(r.id_number.clone(), r.id),
                None => Cursor::Id(r.id),
            })
        })
    } else {
        None
    };
    let items = rows.into_iter().map(MemberSummary::try_from).collect::<Result<_, _>>()?;
    Ok(Page { items, next_cursor })
}

/// Inserts validated members in large transactions, resolving organizations by code.
pub(crate) async fn bulk_insert(store: &Store, rows: &[NewMember]) -> Result<(), StoreError> {
    let mut orgs: std::collections::HashMap<String, (i64, String)> = Default::default();
    let now = Utc::now();
    let mut tx = store.write().await?;
    // Many rows per statement: one round trip per chunk instead of per member. 500 rows
    // of 19 values stay under SQLite's and PostgreSQL's parameter limits.
    for chunk in rows.chunks(500) {
        let mut resolved = Vec::with_capacity(chunk.len());
        for r in chunk {
            let f = &r.fields;
            if !orgs.contains_key(&f.org_code) {
                let o = crate::orgs::by_code(&mut tx, &f.org_code)
                    .await?
                    .ok_or(StoreError::invalid("org_code", "org.unknown"))?;
                orgs.insert(f.org_code.clone(), (o.id, o.path));
            }
            let (org_id, path) = &orgs[&f.org_code];
            resolved.push((f, text::name_key(&f.name), *org_id, path.clone()));
        }
        on!(&mut tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO members (name, name_key, gender, ethnicity, birth_date, id_number, phone, education, \
                 joined_on, category, org_id, org_path, residence_division, residence_address, employer, occupation, \
                 mobility, created_at, updated_at) ",
            );
            q.push_values(&resolved, |mut b, (f, key, org_id, path)| {
                b.push_bind(&f.name)
                    .push_bind(key)
                    .push_bind(f.gender.code())
                    .push_bind(&f.ethnicity)
                    .push_bind(f.birth_date)
                    .push_bind(f.id_number.as_str())
                    .push_bind(&f.phone)
                    .push_bind(f.education.map(|e| e.code()))
                    .push_bind(f.joined_on)
                    .push_bind(f.category.code())
                    .push_bind(*org_id)
                    .push_bind(path.as_str())
                    .push_bind(&f.residence_division)
                    .push_bind(&f.residence_address)
                    .push_bind(&f.employer)
                    .push_bind(&f.occupation)
                    .push_bind(Mobility::Resident.code())
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_read_as_id_phone_digits_or_name() {
        assert_eq!(classify("11010519491231002x"), Some(Text::IdNumber("11010519491231002X".into())));
        assert_eq!(classify("110105491231002"), Some(Text::IdNumber("11010519491231002X".into())));
        assert_eq!(classify("138-1234-5678"), Some(Text::Phone("13812345678".into())));
        assert_eq!(classify("320724"), Some(Text::DigitsPrefix("320724".into())));
        assert_eq!(classify("張 偉"), Some(Text::Name("张伟".into())));
        assert_eq!(classify("  "), None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = decode_cursor(&encode_cursor(&Cursor::Key("王:芳".into(), 42))).unwrap();
        assert!(decode_cursor(&encode_cursor(&Cursor::Key("王\0".into(), 1))).is_err(), "NUL cannot be bound");
        assert!(matches!(c, Cursor::Key(k, 42) if k == "王:芳"));
        assert!(matches!(decode_cursor(&encode_cursor(&Cursor::Id(7))).unwrap(), Cursor::Id(7)));
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor("aTpub3RhbnVtYmVy").is_err());
    }
}

/// A member as screening compares rosters with it: what a roster may hold, where the
/// formal record is, and where the member is checked in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScreeningMember {
    pub id: i64,
    pub name: String,
    pub gender: String,
    pub birth_date: chrono::NaiveDate,
    pub id_number: String,
    pub phone: Option<String>,
    pub residence_address: Option<String>,
    pub org_code: String,
    pub org_path: String,
    pub mobility: String,
    /// The inflow organization's path of an open flow checked in somewhere.
    pub inflow_path: Option<String>,
}

pub(crate) async fn for_screening(tx: &mut Tx, root: Option<&str>) -> Result<Vec<ScreeningMember>, StoreError> {
    let (lo, hi) = kite_domain::org::scope_range(root);
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT m.id, m.name, m.gender, m.birth_date, m.id_number, m.phone, m.residence_address, \
         o.code AS org_code, m.org_path, m.mobility, f.inflow_path FROM members m \
         JOIN organizations o ON o.id = m.org_id \
         LEFT JOIN flows f ON f.member_id = m.id AND f.status = 'checked_in' \
         WHERE m.org_path >= $1 AND m.org_path < $2 AND m.mobility <> 'transferred_out' ORDER BY m.id")
        .bind(&lo).bind(&hi).fetch_all(c).await)?)
}
