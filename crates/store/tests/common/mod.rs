//! Test support shared by the storage test files: the backend loop, assertions on
//! `StoreError`, and the validation context.
#![allow(dead_code)] // each test file uses a different part

use std::fmt::Debug;
use std::future::Future;

use chrono::{NaiveDate, Utc};
use kite_domain::member::Context;
use kite_domain::{Principal, Role};
use kite_store::testing;
use kite_store::{Backend, Store, StoreError};

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
