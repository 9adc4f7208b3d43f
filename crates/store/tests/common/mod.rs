//! Test support shared by the storage test files: the backend loop, assertions on
//! `StoreError`, the validation context, and the organizations, members and accounts the
//! workflow tests build their worlds from.
#![allow(dead_code)] // each test file uses a different part

use std::fmt::Debug;
use std::future::Future;

use chrono::{Days, NaiveDate, Utc};
use kite_domain::member::{validate, Context, MemberFields, MemberInput};
use kite_domain::org::OrgFields;
use kite_domain::{id_number, Gender, OrgKind, OrgLevel, Principal, Role};
use kite_store::testing;
use kite_store::{Backend, Client, Guard, Org, Store, StoreError};

/// Runs `test` on a fresh migrated store of every backend (see
/// [`testing::on_each_backend`]).
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Backend, Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    testing::on_each_backend(|backend, store| async move { (backend, store) }, |(b, s)| test(b, s)).await;
}

#[track_caller]
pub fn assert_conflict<T: Debug>(r: Result<T, StoreError>, code: &str) {
    match r {
        Err(StoreError::Conflict(c)) => assert_eq!(c, code),
        other => panic!("expected Conflict({code:?}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_invalid<T: Debug>(r: Result<T, StoreError>, field: &str, code: &str) {
    match r {
        Err(StoreError::Invalid(e)) => assert_eq!(e.get(field), Some(code), "field errors: {e:?}"),
        other => panic!("expected Invalid({field}: {code}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_not_found<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_forbidden<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Forbidden) => {}
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

pub struct Ctx;

impl Context for Ctx {
    fn division_known(&self, code: &str) -> bool {
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
    }
    fn province_known(&self, code2: &str) -> bool {
        matches!(code2, "11" | "32")
    }
    fn today(&self) -> NaiveDate {
        Utc::now().date_naive()
    }
}

pub fn admin() -> Principal {
    Principal {
        user_id: 1,
        username: "root".into(),
        role: Role::Admin,
        org_path: None,
        member_id: None,
        service_point_id: None,
    }
}

/// An ordinary organization in the test county.
pub fn fields(name: &str, level: OrgLevel) -> OrgFields {
    OrgFields {
        name: name.into(),
        level,
        kind: OrgKind::Ordinary,
        division_code: "320724".into(),
        address: None,
        phone: None,
    }
}

/// A full member of `org`, the `n`th of the tests: ID number and birth date from `n`.
pub fn person(name: &str, org: &str, n: u32) -> MemberFields {
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + Days::new(u64::from(n));
    let gender = if n & 1 == 1 { Gender::Female } else { Gender::Male };
    let id = id_number::compose("320724", birth, n as u16, gender);
    let birth = birth.format("%Y-%m-%d").to_string();
    let input = MemberInput {
        name,
        gender: gender.code(),
        ethnicity: "汉族",
        birth_date: &birth,
        id_number: id.as_str(),
        joined_on: "2012-07-01",
        category: "full",
        org_code: org,
        ..Default::default()
    };
    validate(&input, &Ctx).expect("a valid member")
}

/// An account of `role` bound to `org`.
pub fn at(user_id: i64, username: &str, role: Role, org: &Org) -> Principal {
    Principal {
        user_id,
        username: username.into(),
        role,
        org_path: Some(org.path.clone()),
        member_id: None,
        service_point_id: None,
    }
}

pub fn guard(store: &Store, who: Principal) -> Guard<'_> {
    store.guard(who, Client::default())
}
