//! The two lists, one flow as either side sees it, the return, and inflow evaluations.

use kite_domain::access::{Action, Target};
use kite_domain::evaluation::{self, EvaluationInput};
use kite_domain::flow::{self, Side};
use kite_domain::FlowStatus;
use serde::Serialize;
use utoipa::ToSchema;

use super::{snapshot, Guard};
use crate::evaluations::{self, InflowEvaluation, Subject};
use crate::{audit, flows, orgs, FlowEntry, FlowQuery, Page, StoreError, Tx};

/// Most lines one export may hold; beyond it the caller narrows the filter.
pub const MAX_EXPORT_ROWS: usize = 200_000;

/// One flow as the caller sees it: from the outflow side with a link to the member's
/// record, from the inflow side with only [`FlowEntry`]'s fields; with its evaluations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowView {
    /// `outflow` or `inflow`.
    pub side: String,
    pub flow: FlowEntry,
    pub evaluations: Vec<InflowEvaluation>,
    /// The period an evaluation would be for today (`2026-H2`).
    pub current_period: String,
    /// For the inflow side: other members from the same home county checked in to the
    /// same organization, and whether that is enough to organize a branch of them.
    pub companions: i64,
    pub branch_hint: bool,
    /// The member's activity certificate, for both sides.
    pub certificate: crate::certificates::FlowCertificate,
}

impl Guard<'_> {
    /// The subtree a list covers: the organization asked for, checked, or the caller's own.
    async fn list_root(&self, tx: &mut Tx, org: Option<&str>) -> Result<Option<String>, StoreError> {
        match org.map(str::trim).filter(|s| !s.is_empty()) {
            Some(code) => Ok(Some(self.org_in(tx, code, Action::ReadFlows).await?.path)),
            None => {
                self.require(Action::ReadFlows).await?;
                Ok(self.who.org_root().map(str::to_string))
            }
        }
    }

    /// One page of the outflow or inflow list.
    pub async fn flows(&self, side: Side, q: &FlowQuery) -> Result<Page<FlowEntry>, StoreError> {
        let filter = flow::validate_list_filter(side, &q.filter_input()).map_err(StoreError::Invalid)?;
        let cursor = crate::models::id_cursor(q.cursor.as_deref())?;
        let mut tx = self.store.read().await?;
        let root = self.list_root(&mut tx, q.org.as_deref()).await?;
        let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
        flows::list(&mut tx, root.as_deref(), &filter, cursor, limit).await
    }

    /// Every line of a list, for an export; the export is audited with its filter and size.
    pub async fn flows_export(&self, side: Side, q: &FlowQuery) -> Result<Vec<FlowEntry>, StoreError> {
        let filter = flow::validate_list_filter(side, &q.filter_input()).map_err(StoreError::Invalid)?;
        let mut tx = self.store.read().await?;
        let root = self.list_root(&mut tx, q.org.as_deref()).await?;
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = flows::list(&mut tx, root.as_deref(), &filter, cursor, 2000).await?;
            all.extend(page.items);
            if all.len() > MAX_EXPORT_ROWS {
                return Err(StoreError::invalid("org", "flow.export_too_large"));
            }
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        drop(tx);
        let mut w = self.store.write().await?;
        let mut r = self.record("flow.export", "ok", "flow_list", side.code().to_string());
        r.after = Some(serde_json::json!({
            "org": q.org, "status": q.status, "division": q.division, "left_from": q.left_from,
            "left_to": q.left_to, "mobile": q.mobile, "unevaluated": q.unevaluated, "rows": all.len(),
        }));
        audit::write(&mut w, r).await?;
        w.commit().await?;
        Ok(all)
    }

    /// The flow and the side the caller sees it from; refusals are audited and hidden.
    async fn flow_in(&self, tx: &mut Tx, id: i64) -> Result<(FlowEntry, Side, Option<String>), StoreError> {
        let found = flows::entry(tx, id).await?;
        let side = found.as_ref().and_then(|(_, out, inflow)| self.who.flow_side(out, inflow.as_deref()));
        match (found, side) {
            (Some((entry, _, inflow)), Some(side)) => Ok((entry, side, inflow)),
            _ => {
                self.audit_denial(Action::ReadFlows.code(), "flow", &id.to_string()).await?;
                Err(StoreError::NotFound)
            }
        }
    }

    pub async fn flow(&self, id: i64) -> Result<FlowView, StoreError> {
        let mut tx = self.store.read().await?;
        let (entry, side, _) = self.flow_in(&mut tx, id).await?;
        let evaluations = evaluations::for_flow(&mut tx, id).await?;
        let current = evaluation::Period::containing(crate::today(), self.store.evaluation_cycle());
        let entry_member = entry.member_id;
        let companions = match side {
            Side::Inflow => flows::companions(&mut tx, id).await?,
            Side::Outflow => 0,
        };
        Ok(FlowView {
            side: side.code().into(),
            flow: entry,
            evaluations,
            current_period: current.label(),
            companions,
            branch_hint: kite_domain::certificate::branch_hint(companions as usize),
            certificate: crate::certificates::for_flow(&mut tx, id, entry_member).await?,
        })
    }

    /// The member's evaluations from every inflow organization, for the outflow side.
    pub async fn member_evaluations(&self, member_id: i64) -> Result<Vec<InflowEvaluation>, StoreError> {
        let mut tx = self.store.read().await?;
        self.member_in(&mut tx, member_id, Action::ReadMember).await?;
        evaluations::for_member(&mut tx, member_id).await
    }

    /// The outflow side marks the member returned: the flow closes and stays as history.
    pub async fn flow_return(
        &self,
        flow_id: i64,
        version: i64,
        returned_on: &str,
        note: &str,
    ) -> Result<FlowEntry, StoreError> {
        let mut tx = self.store.write().await?;
        let (entry, _, _) = self.flow_in(&mut tx, flow_id).await?;
        let m = self.member_in(&mut tx, entry.member_id, Action::WriteMember).await?;
        let flow =
            flows::by_member(&mut tx, m.id).await?.into_iter().find(|f| f.id == flow_id).ok_or(StoreError::NotFound)?;
        if !flow.status.is_open() {
            return Err(StoreError::Conflict("flow.closed"));
        }
        if flow.version != version {
            return Err(StoreError::Conflict("stale_version"));
        }
        let r = flow::validate_return(returned_on, note, flow.left_on, crate::today()).map_err(StoreError::Invalid)?;
        let home = orgs::by_code(&mut tx, &flow.outflow_org_code).await?.ok_or(StoreError::NotFound)?;
        flows::close_with_return(&mut tx, &flow, home.id, &r).await?;
        let (after, _, _) = flows::entry(&mut tx, flow_id).await?.ok_or(StoreError::NotFound)?;
        let mut rec = self.record("flow.return", "ok", "member", m.id.to_string());
        rec.before = Some(serde_json::json!({ "flow": flow_id, "status": flow.status }));
        rec.after = Some(serde_json::json!({ "flow": flow_id, "status": after.status, "ended_on": after.ended_on }));
        audit::write(&mut tx, rec).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The inflow side records (or, with `version`, revises) a period's evaluation of a
    /// member checked in to it.
    pub async fn evaluate(
        &self,
        flow_id: i64,
        input: &EvaluationInput<'_>,
        version: Option<i64>,
    ) -> Result<InflowEvaluation, StoreError> {
        let mut tx = self.store.write().await?;
        let (entry, _, inflow_path) = self.flow_in(&mut tx, flow_id).await?;
        let inflow_path = inflow_path.unwrap_or_default();
        self.check(
            Action::EvaluateInflow,
            Target { org_path: &inflow_path, member_id: None },
            "flow",
            &flow_id.to_string(),
        )
        .await?;
        let (Some(inflow_code), Some(checked_in_at), FlowStatus::CheckedIn) =
            (&entry.inflow_org_code, entry.checked_in_at, entry.status)
        else {
            return Err(StoreError::Conflict("evaluation.not_checked_in"));
        };
        let checked_in_on = (checked_in_at + chrono::TimeDelta::hours(8)).date_naive();
        let e = evaluation::validate(input, self.store.evaluation_cycle(), checked_in_on, crate::today())
            .map_err(StoreError::Invalid)?;
        let inflow = orgs::by_code(&mut tx, inflow_code).await?.ok_or(StoreError::NotFound)?;
        let subject = Subject { flow_id, member_id: entry.member_id, inflow_org_id: inflow.id };
        let id = evaluations::save(&mut tx, &subject, &e, version, self.who.user_id).await?;
        let saved = evaluations::for_flow(&mut tx, flow_id)
            .await?
            .into_iter()
            .find(|x| x.id == id)
            .ok_or(StoreError::NotFound)?;
        let mut r = self.record("inflow.evaluate", "ok", "member", entry.member_id.to_string());
        r.after = snapshot(&saved);
        audit::write(&mut tx, r).await?;
        tx.commit().await?;
        Ok(saved)
    }
}
