//! Transfer of the formal record (转接组织关系): a two-sided workflow. The sending side
//! approves (at one or two levels) and issues an introduction letter (介绍信) with a
//! validity period; the receiving side takes the member in before the letter expires and
//! a receipt (回执) goes back; the sending side closes the file when the receipt is in.
//! The member's formal organization changes only at "received".
//!
//! Everything here is a rule over values: which step may follow which, by which side,
//! and the dates (letter validity, overdue receipts). Who a user is on which side is
//! decided by the caller from the organizations' paths.

use chrono::{Days, Months, NaiveDate};

use crate::validation::{self, FieldErrors};
pub use crate::{TransferInitiator as Initiator, TransferStatus as Status};

/// A member settled this long at one place should have the record moved (应转尽转).
pub const SETTLED_AFTER_MONTHS: u32 = 6;
/// Whether a member settled at one place since `settled_on` should be offered a transfer
/// by `today` (the inflow side's hint; the transfer itself is always asked for).
pub fn should_transfer(settled_on: NaiveDate, today: NaiveDate) -> bool {
    crate::flow::months_away(settled_on, today) >= SETTLED_AFTER_MONTHS
}

/// The introduction letter's validity unless configured otherwise.
pub const DEFAULT_LETTER_DAYS: u32 = 10;
/// The longest a letter may be valid, extensions included, unless configured otherwise.
pub const DEFAULT_LETTER_MAX_MONTHS: u32 = 3;
/// The receipt is expected back this long after the member was received.
pub const RECEIPT_DUE_MONTHS: u32 = 1;

/// The configurable limits of introduction letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterRules {
    pub default_days: u32,
    pub max_months: u32,
}

impl Default for LetterRules {
    fn default() -> Self {
        LetterRules { default_days: DEFAULT_LETTER_DAYS, max_months: DEFAULT_LETTER_MAX_MONTHS }
    }
}

impl LetterRules {
    /// Configured limits: at least a day, one to twelve months, and a default that fits
    /// within the maximum whatever the month (28 days a month).
    pub fn new(default_days: u32, max_months: u32) -> Result<Self, &'static str> {
        if default_days == 0 {
            return Err("transfer.letter_days_invalid");
        }
        if !(1..=12).contains(&max_months) {
            return Err("transfer.letter_months_invalid");
        }
        if default_days > 28 * max_months {
            return Err("transfer.letter_too_long");
        }
        Ok(LetterRules { default_days, max_months })
    }

    /// The last day a letter issued on `issued_on` may ever be valid.
    pub fn latest_until(&self, issued_on: NaiveDate) -> NaiveDate {
        issued_on.checked_add_months(Months::new(self.max_months)).unwrap_or(NaiveDate::MAX)
    }

    /// The last valid day of a letter issued on `issued_on` for `days` days (the default
    /// when `None`): the day of issue counts as the first.
    pub fn valid_until(&self, issued_on: NaiveDate, days: Option<u32>) -> Result<NaiveDate, &'static str> {
        let days = days.unwrap_or(self.default_days);
        if days == 0 {
            return Err("transfer.letter_days_invalid");
        }
        let until = issued_on.checked_add_days(Days::new(u64::from(days) - 1)).unwrap_or(NaiveDate::MAX);
        if until > self.latest_until(issued_on) {
            return Err("transfer.letter_too_long");
        }
        Ok(until)
    }

    /// A letter extended to `new_until`: later than now valid, within the maximum.
    pub fn extend(
        &self,
        issued_on: NaiveDate,
        until: NaiveDate,
        new_until: NaiveDate,
    ) -> Result<NaiveDate, &'static str> {
        if new_until <= until {
            return Err("transfer.extend_not_later");
        }
        if new_until > self.latest_until(issued_on) {
            return Err("transfer.letter_too_long");
        }
        Ok(new_until)
    }
}

/// Which side of the transfer a user acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The organization that holds the record now (转出).
    Sending,
    /// The organization the record goes to (转入).
    Receiving,
    /// The member, from the self-service page.
    Member,
}

impl Initiator {
    pub fn side(self) -> Side {
        match self {
            Initiator::Sending => Side::Sending,
            Initiator::Receiving => Side::Receiving,
            Initiator::Member => Side::Member,
        }
    }
}

/// One step of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The sending side approves; with two levels, the branch first, then the committee.
    Approve,
    /// Sent back to the one who asked, to be corrected (退回修改).
    ReturnForCorrection,
    /// The one who asked sends it again after a correction.
    Resubmit,
    /// Refused with a reason: by the sending side before the letter, by the receiving
    /// side instead of receiving.
    Refuse,
    /// Withdrawn by the one who asked, any time before the member is received.
    Withdraw,
    /// The receiving side takes the member in on a valid letter.
    Receive,
    /// The sending side has the receipt back: the transfer is done.
    RecordReceipt,
    /// The letter's validity is extended by the sending side.
    ExtendLetter,
    /// The letter ran out before the member was received.
    Expire,
}

impl Step {
    pub fn code(self) -> &'static str {
        match self {
            Step::Approve => "approve",
            Step::ReturnForCorrection => "return",
            Step::Resubmit => "resubmit",
            Step::Refuse => "refuse",
            Step::Withdraw => "withdraw",
            Step::Receive => "receive",
            Step::RecordReceipt => "record_receipt",
            Step::ExtendLetter => "extend_letter",
            Step::Expire => "expire",
        }
    }

    pub fn from_code(code: &str) -> Option<Step> {
        [
            Step::Approve,
            Step::ReturnForCorrection,
            Step::Resubmit,
            Step::Refuse,
            Step::Withdraw,
            Step::Receive,
            Step::RecordReceipt,
            Step::ExtendLetter,
            Step::Expire,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    /// Steps that need a written reason.
    pub fn needs_reason(self) -> bool {
        matches!(self, Step::ReturnForCorrection | Step::Refuse)
    }
}

/// What a transfer is, as far as the next step is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub initiator: Initiator,
    /// The sending side approves at two levels (configured per organization).
    pub two_levels: bool,
    /// The receiving organization is outside the system: the sending side enters the
    /// receipt by hand, which receives and closes in one step.
    pub receiver_outside: bool,
    pub letter_until: Option<NaiveDate>,
}

/// Why a step cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not this side's step (403).
    NotYourStep,
    /// Not from this status (409, e.g. two people approving at once).
    WrongStatus,
    /// The letter is no longer valid (409).
    LetterExpired,
    /// The letter is still valid: it cannot be marked expired.
    LetterStillValid,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotYourStep => "transfer.not_your_step",
            Refusal::WrongStatus => "transfer.wrong_status",
            Refusal::LetterExpired => "transfer.letter_expired",
            Refusal::LetterStillValid => "transfer.letter_still_valid",
        }
    }
}

/// The status after `step` taken by `side` on `today`. With two levels, the approval
/// from `first_approved` is the committee's above the sending branch: the caller checks
/// that the user acts for that level.
pub fn next(state: &State, step: Step, side: Side, today: NaiveDate) -> Result<Status, Refusal> {
    use Status as S;
    let letter_valid = state.letter_until.is_some_and(|u| today <= u);
    let by_initiator = side == state.initiator.side();
    let (allowed_side, to) = match (step, state.status) {
        (Step::Approve, S::Requested) if state.two_levels => (side == Side::Sending, S::FirstApproved),
        (Step::Approve, S::Requested | S::FirstApproved) => (side == Side::Sending, S::Approved),
        (Step::ReturnForCorrection, S::Requested | S::FirstApproved) => {
            // The sending side sends back what others asked for; its own request it withdraws.
            (side == Side::Sending && state.initiator != Initiator::Sending, S::Returned)
        }
        (Step::Resubmit, S::Returned) => (by_initiator, S::Requested),
        (Step::Refuse, S::Requested | S::FirstApproved) => {
            (side == Side::Sending && state.initiator != Initiator::Sending, S::Refused)
        }
        (Step::Refuse, S::Approved) => (side == Side::Receiving && !state.receiver_outside, S::Refused),
        (Step::Withdraw, S::Requested | S::Returned | S::FirstApproved | S::Approved) => (by_initiator, S::Withdrawn),
        // An expired letter the sending side will not extend: it closes the transfer, so
        // that the member can be given another.
        (Step::Withdraw, S::Expired) => (by_initiator || side == Side::Sending, S::Withdrawn),
        (Step::Receive, S::Approved) => {
            // Out of the system, the sending side records what the receipt says.
            let side_ok = if state.receiver_outside { side == Side::Sending } else { side == Side::Receiving };
            if side_ok && !letter_valid {
                return Err(Refusal::LetterExpired);
            }
            (side_ok, if state.receiver_outside { S::Done } else { S::Received })
        }
        (Step::RecordReceipt, S::Received) => (side == Side::Sending, S::Done),
        (Step::ExtendLetter, S::Approved | S::Expired) => (side == Side::Sending, S::Approved),
        (Step::Expire, S::Approved) => {
            if letter_valid {
                return Err(Refusal::LetterStillValid);
            }
            (side == Side::Sending, S::Expired)
        }
        _ => return Err(Refusal::WrongStatus),
    };
    if allowed_side {
        Ok(to)
    } else {
        Err(Refusal::NotYourStep)
    }
}

/// The steps `side` may take now (for the buttons on the page).
pub fn steps_for(state: &State, side: Side, today: NaiveDate) -> Vec<Step> {
    [
        Step::Approve,
        Step::ReturnForCorrection,
        Step::Resubmit,
        Step::Refuse,
        Step::Withdraw,
        Step::Receive,
        Step::RecordReceipt,
        Step::ExtendLetter,
        Step::Expire,
    ]
    .into_iter()
    .filter(|&s| next(state, s, side, today).is_ok())
    .collect()
}

/// Why a transfer is overdue, if it is: the letter ran out before the member was
/// received, or the receipt has not come back a month after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    LetterExpired,
    ReceiptMissing,
}

pub fn overdue(
    status: Status,
    letter_until: Option<NaiveDate>,
    received_on: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<Overdue> {
    match status {
        Status::Approved if letter_until.is_some_and(|u| today > u) => Some(Overdue::LetterExpired),
        Status::Expired => Some(Overdue::LetterExpired),
        Status::Received if received_on.is_some_and(|r| r < receipt_late_before(today)) => {
            Some(Overdue::ReceiptMissing)
        }
        _ => None,
    }
}

/// On `today`, the receipt of a member received before this day is late (a month ago);
/// the queue's query and [`overdue`] both use it, so that they agree at month ends.
pub fn receipt_late_before(today: NaiveDate) -> NaiveDate {
    today.checked_sub_months(Months::new(RECEIPT_DUE_MONTHS)).unwrap_or(NaiveDate::MIN)
}

/// Whether a transfer in this status still stands in the way of another one (an expired
/// letter may still be extended; withdraw the transfer to start another).
pub fn in_progress(status: Status) -> bool {
    !matches!(status, Status::Done | Status::Refused | Status::Withdrawn)
}

/// A letter's number: the sending organization's code, the year and a sequence within it,
/// e.g. `320724001-2026-0007`.
pub fn letter_number(org_code: &str, year: i32, seq: u32) -> String {
    format!("{org_code}-{year}-{seq:04}")
}

/// A reason for returning or refusing: required, one paragraph.
pub fn reason(value: &str) -> Result<String, FieldErrors> {
    let mut e = FieldErrors::default();
    match validation::multiline(&mut e, "reason", value, true, 500) {
        Some(r) if e.is_empty() => Ok(r),
        _ => Err(e),
    }
}

/// A member whose record arrives from an organization outside the system, with the
/// introduction letter they bring (系统外转入): the member is registered here and the
/// receipt is printed to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub from_org_text: String,
    pub letter_number: Option<String>,
    pub letter_date: Option<NaiveDate>,
    pub note: Option<String>,
}

/// The arrival's values as typed.
#[derive(Debug, Clone, Default)]
pub struct ArrivalInput<'a> {
    pub from_org_text: &'a str,
    pub letter_number: &'a str,
    pub letter_date: &'a str,
    pub note: &'a str,
}

/// Validates an arrival: the sending organization named, a letter dated no later than today.
pub fn validate_arrival(input: &ArrivalInput, today: NaiveDate) -> Result<Arrival, FieldErrors> {
    let mut e = FieldErrors::default();
    let from = validation::text(&mut e, "from_org_text", input.from_org_text, true, 100);
    let letter_number = validation::text(&mut e, "letter_number", input.letter_number, false, 50);
    let letter_date = validation::date(&mut e, "letter_date", input.letter_date, false);
    if letter_date.is_some_and(|d| d > today) {
        e.add("letter_date", "transfer.letter_date_future");
    }
    let note = validation::multiline(&mut e, "note", input.note, false, 500);
    match from {
        Some(from_org_text) if e.is_empty() => Ok(Arrival { from_org_text, letter_number, letter_date, note }),
        _ => Err(e),
    }
}

/// The month a member's dues are paid up to, as the letter states it (`2026-10`): typed
/// `YYYY-MM` (a month field) or `YYYY年M月`; not before 2000, at most a year ahead of
/// `today` (dues may be paid in advance). `None` when left blank: the letter shows a blank
/// to fill in by hand.
pub fn dues_month(input: &str, today: NaiveDate) -> Result<Option<String>, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let s = s.replace('年', "-").replace('月', "");
    let (y, m) = s.split_once('-').ok_or("transfer.dues_month_invalid")?;
    let (y, m): (i32, u32) = match (y.trim().parse(), m.trim().parse()) {
        (Ok(y), Ok(m)) if (1..=12).contains(&m) => (y, m),
        _ => return Err("transfer.dues_month_invalid"),
    };
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or("transfer.dues_month_invalid")?;
    let latest = today.checked_add_months(Months::new(12)).unwrap_or(NaiveDate::MAX);
    if y < 2000 || first > latest {
        return Err("transfer.dues_month_invalid");
    }
    Ok(Some(format!("{y:04}-{m:02}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arrival_names_its_sender_and_a_letter_not_from_the_future() {
        let today = day("2026-11-24");
        let ok = ArrivalInput {
            from_org_text: " 浙江省某镇党委 ",
            letter_number: "ZJ-0012",
            letter_date: "2026-11-20",
            note: "",
        };
        let a = validate_arrival(&ok, today).unwrap();
        assert_eq!((a.from_org_text.as_str(), a.letter_date), ("浙江省某镇党委", Some(day("2026-11-20"))));
        let e = validate_arrival(&ArrivalInput { letter_date: "2026-12-01", ..Default::default() }, today).unwrap_err();
        assert_eq!(
            (e.get("from_org_text"), e.get("letter_date")),
            (Some("required"), Some("transfer.letter_date_future"))
        );
    }

    #[test]
    fn dues_months_are_read_as_typed() {
        let today = day("2026-11-24");
        assert_eq!(dues_month("2026-10", today), Ok(Some("2026-10".into())));
        assert_eq!(dues_month(" 2026年3月 ", today), Ok(Some("2026-03".into())));
        assert_eq!(dues_month("", today), Ok(None));
        assert_eq!(dues_month("2027-11", today), Ok(Some("2027-11".into())), "a year ahead at most");
        for bad in ["2027-12", "1999-12", "2026-13", "2026", "十月", "2026-0"] {
            assert_eq!(dues_month(bad, today), Err("transfer.dues_month_invalid"), "{bad}");
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn state(status: Status, initiator: Initiator) -> State {
        State { status, initiator, two_levels: false, receiver_outside: false, letter_until: Some(day("2026-03-10")) }
    }

    const TODAY: &str = "2026-03-05";

    #[test]
    fn the_plain_path_runs_from_request_to_done() {
        let t = day(TODAY);
        let mut s = state(Status::Requested, Initiator::Member);
        s.status = next(&s, Step::Approve, Side::Sending, t).unwrap();
        assert_eq!(s.status, Status::Approved);
        s.status = next(&s, Step::Receive, Side::Receiving, t).unwrap();
        assert_eq!(s.status, Status::Received);
        s.status = next(&s, Step::RecordReceipt, Side::Sending, t).unwrap();
        assert_eq!(s.status, Status::Done);
        assert_eq!(next(&s, Step::Withdraw, Side::Member, t), Err(Refusal::WrongStatus));
    }

    #[test]
    fn two_levels_approve_twice() {
        let t = day(TODAY);
        let mut s = State { two_levels: true, ..state(Status::Requested, Initiator::Receiving) };
        s.status = next(&s, Step::Approve, Side::Sending, t).unwrap();
        assert_eq!(s.status, Status::FirstApproved);
        // The same approval a second time is the second level's, not a repeat.
        assert_eq!(next(&s, Step::Approve, Side::Sending, t), Ok(Status::Approved));
        assert_eq!(next(&s, Step::Approve, Side::Receiving, t), Err(Refusal::NotYourStep));
    }

    #[test]
    fn each_side_takes_only_its_steps() {
        let t = day(TODAY);
        let requested = state(Status::Requested, Initiator::Receiving);
        assert_eq!(next(&requested, Step::Approve, Side::Receiving, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&requested, Step::Approve, Side::Member, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&requested, Step::Withdraw, Side::Sending, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&requested, Step::Withdraw, Side::Receiving, t), Ok(Status::Withdrawn));
        assert_eq!(next(&requested, Step::ReturnForCorrection, Side::Sending, t), Ok(Status::Returned));
        assert_eq!(next(&requested, Step::Refuse, Side::Sending, t), Ok(Status::Refused));
        // The sending side's own request is withdrawn, not refused or sent back to itself.
        let own = state(Status::Requested, Initiator::Sending);
        assert_eq!(next(&own, Step::Refuse, Side::Sending, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&own, Step::ReturnForCorrection, Side::Sending, t), Err(Refusal::NotYourStep));
        let returned = state(Status::Returned, Initiator::Member);
        assert_eq!(next(&returned, Step::Resubmit, Side::Member, t), Ok(Status::Requested));
        assert_eq!(next(&returned, Step::Resubmit, Side::Receiving, t), Err(Refusal::NotYourStep));
        let approved = state(Status::Approved, Initiator::Sending);
        assert_eq!(next(&approved, Step::Receive, Side::Sending, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&approved, Step::Refuse, Side::Receiving, t), Ok(Status::Refused));
        let received = state(Status::Received, Initiator::Sending);
        assert_eq!(next(&received, Step::RecordReceipt, Side::Receiving, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&received, Step::Withdraw, Side::Sending, t), Err(Refusal::WrongStatus));
    }

    #[test]
    fn an_expired_letter_cannot_be_received_until_extended() {
        let late = day("2026-03-11");
        let approved = state(Status::Approved, Initiator::Sending);
        assert_eq!(next(&approved, Step::Receive, Side::Receiving, day("2026-03-10")), Ok(Status::Received));
        assert_eq!(next(&approved, Step::Receive, Side::Receiving, late), Err(Refusal::LetterExpired));
        // Someone else's step stays someone else's, valid letter or not.
        assert_eq!(next(&approved, Step::Receive, Side::Member, late), Err(Refusal::NotYourStep));
        assert_eq!(next(&approved, Step::Expire, Side::Sending, day(TODAY)), Err(Refusal::LetterStillValid));
        let expired = State { status: next(&approved, Step::Expire, Side::Sending, late).unwrap(), ..approved };
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(next(&expired, Step::ExtendLetter, Side::Sending, late), Ok(Status::Approved));
        // Whoever asked, the sending side may close a transfer whose letter it lets lapse.
        let theirs = State { initiator: Initiator::Receiving, ..expired };
        assert_eq!(next(&theirs, Step::Withdraw, Side::Sending, late), Ok(Status::Withdrawn));
        assert_eq!(next(&theirs, Step::Withdraw, Side::Member, late), Err(Refusal::NotYourStep));
        assert_eq!(overdue(Status::Approved, approved.letter_until, None, late), Some(Overdue::LetterExpired));
        assert_eq!(overdue(Status::Approved, approved.letter_until, None, day(TODAY)), None);
    }

    #[test]
    fn outside_the_system_the_sending_side_enters_the_receipt() {
        let t = day(TODAY);
        let s = State { receiver_outside: true, ..state(Status::Approved, Initiator::Sending) };
        assert_eq!(next(&s, Step::Receive, Side::Receiving, t), Err(Refusal::NotYourStep));
        assert_eq!(next(&s, Step::Receive, Side::Sending, t), Ok(Status::Done));
        assert_eq!(next(&s, Step::Refuse, Side::Receiving, t), Err(Refusal::NotYourStep));
    }

    #[test]
    fn buttons_follow_the_rules() {
        let t = day(TODAY);
        let s = state(Status::Requested, Initiator::Member);
        assert_eq!(steps_for(&s, Side::Sending, t), vec![Step::Approve, Step::ReturnForCorrection, Step::Refuse]);
        assert_eq!(steps_for(&s, Side::Member, t), vec![Step::Withdraw]);
        assert!(steps_for(&s, Side::Receiving, t).is_empty());
    }

    #[test]
    fn letters_last_ten_days_and_at_most_three_months() {
        let rules = LetterRules::default();
        let issued = day("2026-01-31");
        assert_eq!(rules.valid_until(issued, None), Ok(day("2026-02-09")));
        assert_eq!(rules.valid_until(issued, Some(1)), Ok(issued));
        assert_eq!(rules.valid_until(issued, Some(0)), Err("transfer.letter_days_invalid"));
        assert_eq!(rules.latest_until(issued), day("2026-04-30"));
        assert_eq!(rules.valid_until(issued, Some(90)), Ok(day("2026-04-30")));
        assert_eq!(rules.valid_until(issued, Some(91)), Err("transfer.letter_too_long"));
        let until = day("2026-02-09");
        assert_eq!(rules.extend(issued, until, day("2026-03-31")), Ok(day("2026-03-31")));
        assert_eq!(rules.extend(issued, until, until), Err("transfer.extend_not_later"));
        assert_eq!(rules.extend(issued, until, day("2026-05-01")), Err("transfer.letter_too_long"));
    }

    #[test]
    fn configured_letter_rules_are_checked() {
        assert_eq!(LetterRules::new(10, 3), Ok(LetterRules::default()));
        assert_eq!(LetterRules::new(0, 3), Err("transfer.letter_days_invalid"));
        assert_eq!(LetterRules::new(10, 0), Err("transfer.letter_months_invalid"));
        assert_eq!(LetterRules::new(10, 13), Err("transfer.letter_months_invalid"));
        assert_eq!(LetterRules::new(29, 1), Err("transfer.letter_too_long"));
        let r = LetterRules::new(28, 1).unwrap();
        assert_eq!(r.valid_until(day("2026-02-01"), None), Ok(day("2026-02-28")));
    }

    #[test]
    fn a_receipt_is_overdue_a_month_after_receiving() {
        let received = day("2026-01-31");
        assert_eq!(receipt_late_before(day("2026-03-01")), day("2026-02-01"));
        assert_eq!(overdue(Status::Received, None, Some(received), day("2026-02-28")), None);
        assert_eq!(overdue(Status::Received, None, Some(received), day("2026-03-01")), Some(Overdue::ReceiptMissing));
        assert_eq!(overdue(Status::Done, None, Some(received), day("2026-06-01")), None);
    }

    #[test]
    fn open_transfers_block_another() {
        for s in Status::ALL {
            let open = in_progress(*s);
            let closed = matches!(s, Status::Done | Status::Refused | Status::Withdrawn);
            assert_ne!(open, closed, "{s}");
        }
        assert_eq!(letter_number("320724001", 2026, 7), "320724001-2026-0007");
        assert!(!should_transfer(day("2025-09-06"), day(TODAY)));
        assert!(should_transfer(day("2025-09-05"), day(TODAY)));
        assert!(reason("  ").is_err());
        assert_eq!(reason("材料不全\n请补充").unwrap(), "材料不全\n请补充");
        assert_eq!(Step::from_code("record_receipt"), Some(Step::RecordReceipt));
        assert!(Step::Refuse.needs_reason() && !Step::Approve.needs_reason());
    }
}
