//! The matching engine: roster rows against the member registry.
//!
//! 1. [`Registry`]: the members, built once: packed strings, an ID-number hash index and
//!    one hash index of blocking keys.
//! 2. Candidates per row: the member with the same valid ID number; for an invalid one,
//!    the members whose ID is one of its repair candidates; then, unless the ID already
//!    gave a sure match, the members sharing a blocking key (birth date + first pinyin
//!    letter, pinyin + birth year, phone, ID county + birth date; the name alone when
//!    there is no birth date). Blocks larger than `max_block` are skipped, which keeps the
//!    pairs near linear in the input.
//! 3. Each pair's comparison [`Vector`] is scored with Fellegi–Sunter weights
//!    ([`Model`]): m by EM on the candidate pairs of a training sample, u from random
//!    pairs ([`train`]), or a model the user sets.
//! 4. The score is a match probability, put in a [`Band`]; [`Matcher::explain`] gives
//!    each field's level and weight.

// m, u and the weights are tables by field and level: index loops read best.
#![allow(clippy::needless_range_loop)]

pub mod compare;
pub mod model;
pub mod stream;

use std::hash::Hasher;
use std::io::{self, Write};

use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

pub use compare::{compare, Record, Vector, View, FIELDS, LEVELS};
pub use model::{
    estimate, probability, u_from_counts, u_from_random_pairs, EmOptions, EmResult, Explanation, FieldWeight, Model,
    Weights,
};
pub use stream::{match_stream, Chunk, StreamOptions, StreamReport, StreamTimings};

use crate::normalize::{repair_candidates, Gender, PartialDate};

/// The key of an ID number: 17 digits and the check character (X as 10).
fn id_key(id: &[u8]) -> Option<u64> {
    if id.len() != 18 {
        return None;
    }
    let mut k = 0u64;
    for &b in &id[..17] {
        if !b.is_ascii_digit() {
            return None;
        }
        k = k * 10 + u64::from(b - b'0');
    }
    let check = match id[17] {
        b @ b'0'..=b'9' => u64::from(b - b'0'),
        b'X' => 10,
        _ => return None,
    };
    Some(k * 11 + check)
}

fn key(tag: u8, parts: &[&[u8]]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(tag);
    for p in parts {
        h.write(p);
        h.write_u8(0xFF);
    }
    h.finish()
}

/// The blocking keys of a record. The member side always includes the name alone; a
/// roster row uses it only when it has no birth date at all.
fn block_keys(v: &View<'_>, id_birth: Option<PartialDate>, member_side: bool, out: &mut Vec<(u8, u64)>) {
    out.clear();
    let births = [v.birth, id_birth];
    let mut years: Vec<i32> = births.iter().flatten().map(|d| d.year()).collect();
    years.dedup();
    let mut days: Vec<NaiveDate> = births.iter().flatten().filter_map(|d| d.date()).collect();
    days.dedup();
    if let Some(initial) = v.pinyin.as_bytes().first() {
        for d in &days {
            let ymd = (d.year() as u32 * 10_000 + d.month() * 100 + d.day()).to_le_bytes();
            out.push((1, key(1, &[&ymd, &[*initial]])));
        }
        for y in &years {
            out.push((2, key(2, &[&y.to_le_bytes(), v.pinyin.as_bytes()])));
        }
    }
    if let Some(p) = v.phone {
        out.push((3, key(3, &[&p.to_le_bytes()])));
    }
    if v.id.len() == 18 {
        out.push((4, key(4, &[&v.id.as_bytes()[..14]])));
    }
    if !v.name_key.is_empty() && (member_side || years.is_empty()) {
        out.push((5, key(5, &[v.name_key.as_bytes()])));
    }
}

struct Member {
    /// Start of name key, pinyin, ID and address in the arena, one after another.
    start: usize,
    lens: [u16; 4],
    birth: Option<PartialDate>,
    gender: Option<Gender>,
    /// 0 if unknown (no real number is all zeros): 8 bytes less a member than an Option.
    phone: u64,
    /// The member's data row in the registry file, 1-based.
    row: u64,
}

/// An ID key with its bits spread (a bijection), so that its top bits tell keys apart
/// as a hash's do ([`BlockIndex`] finds keys by their top bits).
fn spread(k: u64) -> u64 {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A blocking key and a member that has it, in 12 bytes instead of the 16 of a tuple:
/// five per member are held until the registry is built.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct KeyMember {
    key: u64,
    member: u32,
}

/// Adds records one at a time, then [`RegistryBuilder::build`] sorts the keys once.
#[derive(Default)]
pub struct RegistryBuilder {
    arena: String,
    members: Vec<Member>,
    keys: Vec<KeyMember>,
    ids: Vec<KeyMember>,
    scratch: Vec<(u8, u64)>,
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl RegistryBuilder {
    pub fn new() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Adds a member read from data row `row`. Past 4 billion members further ones are
    /// ignored (the index is 32-bit).
    pub fn push(&mut self, row: u64, r: &Record) {
        let Ok(index) = u32::try_from(self.members.len()) else { return };
        let start = self.arena.len();
        let mut lens = [0u16; 4];
        for (i, s) in [&r.name_key, &r.pinyin, &r.id, &r.address].into_iter().enumerate() {
            let s = cut(s, u16::MAX as usize);
            self.arena.push_str(s);
            lens[i] = s.len() as u16;
        }
        self.members.push(Member { start, lens, birth: r.birth, gender: r.gender, phone: r.phone.unwrap_or(0), row });
        if let Some(k) = id_key(r.id.as_bytes()) {
            self.ids.push(KeyMember { key: spread(k), member: index });
        }
        let mut keys = std::mem::take(&mut self.scratch);
        block_keys(&r.view(), r.id_birth, true, &mut keys);
        self.keys.extend(keys.iter().map(|k| KeyMember { key: k.1, member: index }));
        self.scratch = keys;
    }

    pub fn build(mut self) -> Registry {
        let mut pairs = std::mem::take(&mut self.keys);
        pairs.sort_unstable_by_key(|p| ({ p.key }, { p.member }));
        pairs.dedup_by_key(|p| ({ p.key }, { p.member }));
        let blocks = BlockIndex::from_sorted(pairs);
        // A number listed twice in the registry keeps its first member.
        let mut ids = self.ids;
        // Stable: of the members with the same number, the first stays first.
        ids.sort_by_key(|p| p.key);
        ids.dedup_by_key(|p| p.key);
        let by_id = BlockIndex::from_sorted(ids);
        self.arena.shrink_to_fit();
        self.members.shrink_to_fit();
        Registry { arena: self.arena, members: self.members, by_id, blocks }
    }
}

/// Keys to members: the blocks (each key's members), and the ID numbers. Sorted keys with
/// their ranges in one posting list, found through a table of where each prefix of the
/// keys' top bits starts (about four keys a prefix): a lookup reads the table, then a few
/// neighbouring keys. Less memory than hash maps, and built from the sorted pairs while
/// they are given back.
#[derive(Default)]
struct BlockIndex {
    /// `prefix[p]..prefix[p + 1]`: the keys whose top bits are `p`.
    prefix: Vec<u32>,
    shift: u32,
    keys: Vec<u64>,
    /// `starts[i]..starts[i + 1]`: key `i`'s members in `postings`.
    starts: Vec<u32>,
    postings: Vec<u32>,
}

impl BlockIndex {
    /// From (key, member) pairs sorted and without repeats. They are taken from the end
    /// and their vector shrunk as it goes, so that its memory is given back while the
    /// index grows (the pairs are the largest part of building a registry).
    fn from_sorted(mut pairs: Vec<KeyMember>) -> BlockIndex {
        let mut postings = Vec::with_capacity(pairs.len());
        let (mut keys, mut counts): (Vec<u64>, Vec<u32>) = (Vec::new(), Vec::new());
        while let Some(KeyMember { key: k, member: m }) = pairs.pop() {
            postings.push(m);
            match (keys.last(), counts.last_mut()) {
                (Some(last), Some(n)) if *last == k => *n += 1,
                _ => {
                    keys.push(k);
                    counts.push(1);
                }
            }
            if pairs.len().is_multiple_of(1 << 20) {
                pairs.shrink_to_fit();
            }
        }
        keys.reverse();
        counts.reverse();
        postings.reverse();
        let mut starts = Vec::with_capacity(counts.len() + 1);
        starts.push(0u32);
        for n in counts {
            starts.push(starts.last().copied().unwrap_or(0) + n);
        }
        // About four keys per prefix.
        let bits = (usize::BITS - (keys.len() / 4).leading_zeros()).clamp(1, 24);
        let shift = u64::BITS - bits;
        let mut prefix = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0;
        for p in 0..=(1u64 << bits) {
            while i < keys.len() && (keys[i] >> shift) < p {
                i += 1;
            }
            prefix.push(i as u32);
        }
        keys.shrink_to_fit();
        starts.shrink_to_fit();
        BlockIndex { prefix, shift, keys, starts, postings }
    }

    fn get(&self, k: u64) -> &[u32] {
        let p = (k >> self.shift) as usize;
        let (Some(&lo), Some(&hi)) = (self.prefix.get(p), self.prefix.get(p + 1)) else { return &[] };
        let Some(i) = self.keys.get(lo as usize..hi as usize).and_then(|ks| ks.iter().position(|x| *x == k)) else {
            return &[];
        };
        let i = lo as usize + i;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => self.postings.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.prefix.capacity() * 4
            + self.keys.capacity() * 8
            + self.starts.capacity() * 4
            + self.postings.capacity() * 4
    }
}

/// The members, indexed for matching.
pub struct Registry {
    arena: String,
    members: Vec<Member>,
    /// ID keys ([`spread`]) to the member with that number.
    by_id: BlockIndex,
    blocks: BlockIndex,
}

impl Registry {
    pub fn from_records<'a>(records: impl IntoIterator<Item = (u64, &'a Record)>) -> Registry {
        let mut b = RegistryBuilder::new();
        for (row, r) in records {
            b.push(row, r);
        }
        b.build()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn field(&self, m: &Member, i: usize) -> &str {
        let start = m.start + m.lens[..i].iter().map(|l| *l as usize).sum::<usize>();
        self.arena.get(start..start + m.lens[i] as usize).unwrap_or("")
    }

    /// Member `i` as [`compare`] reads it.
    pub fn view(&self, i: u32) -> Option<View<'_>> {
        let m = self.members.get(i as usize)?;
        Some(View {
            name_key: self.field(m, 0),
            pinyin: self.field(m, 1),
            id: self.field(m, 2),
            birth: m.birth,
            gender: m.gender,
            phone: (m.phone != 0).then_some(m.phone),
            address: self.field(m, 3),
        })
    }

    /// The member's ID number as registered.
    pub fn id_number(&self, i: u32) -> &str {
        self.members.get(i as usize).map_or("", |m| self.field(m, 2))
    }

    /// The member's data row in the registry file.
    pub fn row(&self, i: u32) -> Option<u64> {
        self.members.get(i as usize).map(|m| m.row)
    }

    /// The member with this ID number (18 characters, cleaned).
    pub fn find_id(&self, id: &str) -> Option<u32> {
        self.by_id.get(spread(id_key(id.as_bytes())?)).first().copied()
    }

    /// Bytes held by the index (approximate: hash tables at their capacity).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.members.capacity() * std::mem::size_of::<Member>()
            + self.by_id.heap_bytes()
            + self.blocks.heap_bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Sure enough to propose without doubt (still reviewed before anything is written).
    Match,
    /// Worth a person's look.
    Review,
    NonMatch,
}

impl Band {
    pub fn code(self) -> &'static str {
        match self {
            Band::Match => "match",
            Band::Review => "review",
            Band::NonMatch => "non_match",
        }
    }
}

/// How a candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// The row's valid ID number is the member's.
    Id,
    /// One of the invalid number's repair candidates is the member's.
    RepairedId,
    /// A shared blocking key.
    Blocking,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// Probability from which a pair is a sure match.
    pub match_threshold: f64,
    /// Probability from which a pair goes to review.
    pub review_threshold: f64,
    /// Candidates kept per row (best first).
    pub max_candidates: usize,
    /// Blocks with more members than this are not used (a common name in one year).
    pub max_block: usize,
    /// ID numbers born after this day are not repair candidates.
    pub today: NaiveDate,
    pub threads: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            match_threshold: 0.99,
            review_threshold: 0.5,
            max_candidates: 5,
            max_block: 500,
            today: chrono::Local::now().date_naive(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// One member proposed for a roster row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Candidate {
    /// The member's index in the [`Registry`].
    pub member: u32,
    pub vector: Vector,
    /// Match weight (log2 odds).
    pub weight: f64,
    pub probability: f64,
    pub band: Band,
    pub path: Path,
}

/// The candidates of one roster row, best first: those in the match and review bands,
/// or else the best one found (so that "no match" can be explained too).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RowMatch {
    pub candidates: Vec<Candidate>,
    /// Pairs compared for this row.
    pub compared: u32,
}

impl RowMatch {
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

/// Runs `f` on `threads` contiguous chunks of `items`, in order.
fn in_chunks<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = threads.max(1);
    if threads == 1 || items.len() < 2 * threads {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|c| s.spawn(|| f(c))).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

pub struct Matcher<'r> {
    registry: &'r Registry,
    model: Model,
    weights: Weights,
    config: MatchConfig,
}

impl<'r> Matcher<'r> {
    pub fn new(registry: &'r Registry, model: Model, config: MatchConfig) -> Matcher<'r> {
        Matcher { registry, weights: model.weights(), model, config }
    }

    pub fn registry(&self) -> &'r Registry {
        self.registry
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    pub fn band(&self, probability: f64) -> Band {
        if probability >= self.config.match_threshold {
            Band::Match
        } else if probability >= self.config.review_threshold {
            Band::Review
        } else {
            Band::NonMatch
        }
    }

    pub fn explain(&self, c: &Candidate) -> Explanation {
        self.weights.explain(c.vector)
    }

    fn candidate(&self, r: &View<'_>, member: u32, path: Path) -> Option<Candidate> {
        let vector = compare(r, &self.registry.view(member)?);
        let weight = self.weights.weight(vector);
        let probability = probability(weight);
        Some(Candidate { member, vector, weight, probability, band: self.band(probability), path })
    }

    /// All candidate pairs of a row. With `shortcut`, a sure match on the ID number
    /// (valid or repaired) ends the search.
    fn gather(&self, r: &Record, shortcut: bool, seen: &mut Vec<u32>, keys: &mut Vec<(u8, u64)>) -> Vec<Candidate> {
        let view = r.view();
        let mut out = self.gather_ids(r, &view);
        if shortcut && out.iter().any(|c| c.band == Band::Match) {
            return out;
        }
        block_keys(&view, r.id_birth, false, keys);
        seen.clear();
        for (_, k) in keys.iter() {
            seen.extend_from_slice(self.block(*k));
        }
        seen.sort_unstable();
        seen.dedup();
        for &m in seen.iter() {
            if !out.iter().any(|c| c.member == m) {
                out.extend(self.candidate(&view, m, Path::Blocking));
            }
        }
        out
    }

    /// The members sharing a key, unless the block is too large to use.
    fn block(&self, k: u64) -> &[u32] {
        let members = self.registry.blocks.get(k);
        if members.len() <= self.config.max_block {
            members
        } else {
            &[]
        }
    }

    /// Training pairs by how they were found: session 0 is the ID path (valid or
    /// repaired), sessions 1–5 the blocking keys' rules.
    fn gather_by_rule(&self, r: &Record, keys: &mut Vec<(u8, u64)>, out: &mut Vec<(u8, Vector)>) {
        let view = r.view();
        for c in self.gather_ids(r, &view) {
            out.push((0, c.vector));
        }
        block_keys(&view, r.id_birth, false, keys);
        for (rule, k) in keys.iter() {
            for &m in self.block(*k) {
                if let Some(member) = self.registry.view(m) {
                    out.push((*rule, compare(&view, &member)));
                }
            }
        }
    }

    fn gather_ids(&self, r: &Record, view: &View<'_>) -> Vec<Candidate> {
        let mut out = Vec::new();
        if r.id_valid {
            out.extend(self.registry.find_id(&r.id).and_then(|m| self.candidate(view, m, Path::Id)));
        } else if r.id.len() == 18 {
            for id in repair_candidates(&r.id, self.config.today) {
                out.extend(self.registry.find_id(&id).and_then(|m| self.candidate(view, m, Path::RepairedId)));
            }
        }
        out
    }

    /// The candidates of one row.
    pub fn match_record(&self, r: &Record) -> RowMatch {
        self.match_with(r, &mut Vec::new(), &mut Vec::new())
    }

    fn match_with(&self, r: &Record, seen: &mut Vec<u32>, keys: &mut Vec<(u8, u64)>) -> RowMatch {
        let mut all = self.gather(r, true, seen, keys);
        let compared = all.len() as u32;
        all.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.member.cmp(&b.member)));
        let keep = all.iter().take_while(|c| c.band != Band::NonMatch).count().max(1);
        all.truncate(keep.min(self.config.max_candidates.max(1)));
        all.shrink_to_fit();
        RowMatch { candidates: all, compared }
    }

    /// The candidates of every row, on `config.threads` threads, in order.
    pub fn match_all(&self, rows: &[Record]) -> Vec<RowMatch> {
        in_chunks(rows, self.config.threads, |chunk| {
            let (mut seen, mut keys) = (Vec::new(), Vec::new());
            chunk.iter().map(|r| self.match_with(r, &mut seen, &mut keys)).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// Writes `roster_line,member_id_number,score,band`, one line per candidate in the
    /// match and review bands, best first per row (the interface of `kite screen match`).
    /// `rows` gives each row's data row number with its result.
    pub fn write_matches<'a, W: Write>(
        &self,
        out: W,
        rows: impl IntoIterator<Item = (u64, &'a RowMatch)>,
    ) -> io::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(MATCHES_HEADER)?;
        self.write_match_rows(&mut w, rows)?;
        w.flush()
    }

    /// [`Self::write_matches`] without the header, for a file written chunk by chunk.
    pub fn write_match_rows<'a, W: Write>(
        &self,
        w: &mut csv::Writer<W>,
        rows: impl IntoIterator<Item = (u64, &'a RowMatch)>,
    ) -> io::Result<()> {
        for (line, m) in rows {
            for c in m.candidates.iter().filter(|c| c.band != Band::NonMatch) {
                w.write_record([
                    line.to_string().as_str(),
                    self.registry.id_number(c.member),
                    &format!("{:.6}", c.probability),
                    c.band.code(),
                ])?;
            }
        }
        Ok(())
    }
}

/// The header of MATCHES.csv.
pub const MATCHES_HEADER: [&str; 4] = ["roster_line", "member_id_number", "score", "band"];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Random pairs for u. Fewer than a million leave the u of rare agreements (the
    /// same birth date: about 1 in 27,000) to a handful of pairs: 200,000 gave 16.5
    /// bits for an exact birth date instead of 14.7 and 39 wrong sure matches instead
    /// of 5 at 1M × 1M (BENCHMARKS.md).
    pub random_pairs: usize,
    pub seed: u64,
    pub em: EmOptions,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { random_pairs: 2_000_000, seed: 1, em: EmOptions::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Training {
    /// The model to score with: its prior is the share of matches among all pairs.
    pub model: Model,
    /// The share of matches among the candidate pairs, as EM found it.
    pub candidate_prior: f64,
    pub em_iterations: usize,
    pub converged: bool,
    /// Candidate pairs EM saw, and how many distinct vectors they had.
    pub pairs: usize,
    pub patterns: usize,
}

impl Training {
    /// A model set by the user, nothing estimated.
    pub fn given(model: Model) -> Training {
        Training { candidate_prior: model.prior, model, em_iterations: 0, converged: true, pairs: 0, patterns: 0 }
    }
}

/// Random streams the u pairs are drawn from (split among the threads).
const U_STREAMS: u64 = 8;

/// The fields each training session leaves out because its pairs agree on them by
/// construction: ID path; birth date + initial; pinyin + year; phone; ID county + birth
/// date; name.
const SESSION_MASKS: [&[usize]; 6] = [
    &[compare::ID],
    &[compare::BIRTH],
    &[compare::NAME, compare::BIRTH],
    &[compare::PHONE],
    &[compare::ID, compare::BIRTH],
    &[compare::NAME],
];

fn masked(v: Vector, fields: &[usize]) -> Vector {
    Vector(fields.iter().fold(v.0, |acc, f| acc & !(7 << (3 * f))))
}

fn merge_counts(parts: Vec<FxHashMap<Vector, f64>>) -> Vec<(Vector, f64)> {
    let mut all: FxHashMap<Vector, f64> = FxHashMap::default();
    for part in parts {
        for (v, n) in part {
            *all.entry(v).or_insert(0.0) += n;
        }
    }
    let mut patterns: Vec<(Vector, f64)> = all.into_iter().collect();
    patterns.sort_by_key(|p| p.0);
    patterns
}

/// Estimates the model on a sample of roster rows, the way Splink does:
/// 1. u from random pairs (nearly all non-matches);
/// 2. m by EM once per way of finding pairs (the ID path and each blocking rule), each
///    session blind to the fields its pairs agree on by construction, and averaged over
///    the sessions that saw a field (weighted by their expected matches);
/// 3. the share of matches among all the sample's candidate pairs by EM with m and u
///    fixed, turned into the share among all pairs, which is the scoring prior.
pub fn train(registry: &Registry, rows: &[Record], config: &MatchConfig, options: &TrainOptions) -> Training {
    let mut start = Model::initial();
    if !registry.is_empty() && !rows.is_empty() {
        // Eight streams of the seed, shared among the threads: the same pairs whatever
        // the number of threads.
        let streams: Vec<u64> = (0..U_STREAMS).collect();
        let per_stream = options.random_pairs.div_ceil(U_STREAMS as usize);
        let parts = in_chunks(&streams, config.threads, |streams| {
            let mut counts: FxHashMap<Vector, f64> = FxHashMap::default();
            for stream in streams {
                let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
                rng.set_stream(*stream);
                for _ in 0..per_stream {
                    let r = &rows[rng.gen_range(0..rows.len())];
                    if let Some(m) = registry.view(rng.gen_range(0..registry.len()) as u32) {
                        *counts.entry(compare(&r.view(), &m)).or_insert(0.0) += 1.0;
                    }
                }
            }
            counts
        });
        start.u = u_from_counts(merge_counts(parts));
    }
    let matcher = Matcher::new(registry, start.clone(), *config);
    let parts = in_chunks(rows, config.threads, |chunk| {
        let mut sessions: Vec<FxHashMap<Vector, f64>> = vec![FxHashMap::default(); SESSION_MASKS.len()];
        let mut union: FxHashMap<Vector, f64> = FxHashMap::default();
        let (mut seen, mut keys, mut found) = (Vec::new(), Vec::new(), Vec::new());
        for r in chunk {
            found.clear();
            matcher.gather_by_rule(r, &mut keys, &mut found);
            for (rule, v) in &found {
                let rule = *rule as usize;
                *sessions[rule].entry(masked(*v, SESSION_MASKS[rule])).or_insert(0.0) += 1.0;
            }
            for c in matcher.gather(r, false, &mut seen, &mut keys) {
                *union.entry(c.vector).or_insert(0.0) += 1.0;
            }
        }
        (sessions, union)
    });
    let mut by_session: Vec<Vec<FxHashMap<Vector, f64>>> = vec![Vec::new(); SESSION_MASKS.len()];
    let mut unions = Vec::new();
    for (sessions, union) in parts {
        for (i, s) in sessions.into_iter().enumerate() {
            by_session[i].push(s);
        }
        unions.push(union);
    }

    // m: a weighted average over the sessions that saw each field.
    let mut m_sum = [[0.0; compare::MAX_LEVELS]; compare::NFIELDS];
    let mut m_weight = [0.0; compare::NFIELDS];
    let mut iterations = 0;
    let mut converged = true;
    for (rule, parts) in by_session.into_iter().enumerate() {
        let patterns = merge_counts(parts);
        let pairs: f64 = patterns.iter().map(|p| p.1).sum();
        if pairs == 0.0 {
            continue;
        }
        let em = estimate(&patterns, &start, &options.em);
        iterations += em.iterations;
        converged &= em.converged;
        let weight = em.model.prior * pairs;
        for f in (0..compare::NFIELDS).filter(|f| !SESSION_MASKS[rule].contains(f)) {
            for l in 0..compare::MAX_LEVELS {
                m_sum[f][l] += weight * em.model.m[f][l];
            }
            m_weight[f] += weight;
        }
    }
    let mut model = start.clone();
    for f in 0..compare::NFIELDS {
        if m_weight[f] > 0.0 {
            for l in 0..compare::MAX_LEVELS {
                model.m[f][l] = m_sum[f][l] / m_weight[f];
            }
        }
    }

    // The prior: EM on every candidate pair with m and u fixed.
    let patterns = merge_counts(unions);
    let pairs = patterns.iter().map(|p| p.1).sum::<f64>() as usize;
    let fixed = EmOptions { estimate_m: false, estimate_u: false, ..options.em };
    let em = estimate(&patterns, &model, &fixed);
    iterations += em.iterations;
    converged &= em.converged;
    let candidate_prior = em.model.prior;
    // EM's prior is the share of matches among candidate pairs, which agree on their
    // blocking keys by construction; scoring with it would count that agreement twice.
    let all_pairs = rows.len() as f64 * registry.len() as f64;
    if all_pairs > 0.0 {
        model.prior = (candidate_prior * pairs as f64 / all_pairs).clamp(1e-12, 0.5);
    }
    Training { candidate_prior, model, em_iterations: iterations, converged, pairs, patterns: patterns.len() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{NormalizedFields, RawFields};

    fn record(name: &str, id: &str, birth: &str, phone: &str) -> Record {
        let raw = RawFields {
            name: Some(name.into()),
            id_number: Some(id.into()),
            birth_date: Some(birth.into()),
            phone: Some(phone.into()),
            ..RawFields::default()
        };
        Record::from_fields(&NormalizedFields::from_raw(&raw, &mut Vec::new()))
    }

    fn config() -> MatchConfig {
        MatchConfig { today: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(), threads: 1, ..MatchConfig::default() }
    }

    #[test]
    fn the_block_index_finds_every_key_and_nothing_else() {
        assert!(BlockIndex::from_sorted(Vec::new()).get(42).is_empty());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let keys: Vec<u64> = (0..5_000).map(|_| rng.gen()).chain([0, u64::MAX]).collect();
        let mut pairs: Vec<KeyMember> = keys
            .iter()
            .enumerate()
            .flat_map(|(i, k)| (0..i % 4 + 1).map(move |m| KeyMember { key: *k, member: m as u32 }))
            .collect();
        pairs.sort_unstable_by_key(|p| ({ p.key }, { p.member }));
        let index = BlockIndex::from_sorted(pairs);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.get(*k), (0..i as u32 % 4 + 1).collect::<Vec<_>>().as_slice(), "key {k}");
        }
        assert!(index.get(12345).is_empty());
    }

    #[test]
    fn id_keys_are_one_to_one_on_valid_shapes() {
        assert_eq!(id_key(b"11010519491231002X"), Some(11010519491231002 * 11 + 10));
        assert_ne!(id_key(b"110105194912310020"), id_key(b"11010519491231002X"));
        assert_eq!(id_key(b"1101051949123100"), None);
        assert_eq!(id_key(b"11010519491231002Y"), None);
    }

    #[test]
    fn the_id_path_repair_and_blocking_find_their_members() {
        let members = [
            record("张伟", "11010519491231002X", "1949-12-31", "13800138000"),
            record("李娜", "320724198802290012", "1988-02-29", "13900139000"),
            record("王芳", "", "1990-03-05", "13700137000"),
        ];
        let registry = Registry::from_records(members.iter().enumerate().map(|(i, r)| (i as u64 + 1, r)));
        assert_eq!(registry.len(), 3);
        assert_eq!(registry.find_id("320724198802290012"), Some(1));
        assert_eq!(registry.row(1), Some(2));
        let matcher = Matcher::new(&registry, Model::initial(), config());

        let exact = matcher.match_record(&record("张伟", "11010519491231002x", "", ""));
        assert_eq!(exact.best().map(|c| (c.member, c.path)), Some((0, Path::Id)));

        // One wrong digit: the repair candidates find the member.
        let typo = matcher.match_record(&record("李娜", "320724198802290013", "1988-02-29", ""));
        assert_eq!(typo.best().map(|c| (c.member, c.path)), Some((1, Path::RepairedId)));

        // No ID: same birth date and pinyin initial, a homophone name.
        let fuzzy = matcher.match_record(&record("王方", "", "1990年3月5日", "13700137000"));
        let best = fuzzy.best().expect("a candidate");
        assert_eq!((best.member, best.path), (2, Path::Blocking));
        let e = matcher.explain(best);
        assert_eq!(e.fields[0].level, "same_pinyin");
        assert_eq!(e.fields[4].level, "exact");

        // Nobody alike.
        let none = matcher.match_record(&record("赵六", "", "1970-01-01", "15000000000"));
        assert!(none.candidates.is_empty());
    }

    #[test]
    fn write_matches_lists_match_and_review_bands() {
        let members = [record("张伟", "11010519491231002X", "1949-12-31", "13800138000")];
        let registry = Registry::from_records(members.iter().map(|r| (1, r)));
        let matcher = Matcher::new(&registry, Model::initial(), config());
        let m = matcher.match_record(&members[0]);
        assert_eq!(m.best().map(|c| c.band), Some(Band::Match));
        let mut out = Vec::new();
        matcher.write_matches(&mut out, [(7, &m)]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("roster_line,member_id_number,score,band\n7,11010519491231002X,"), "{text}");
        assert!(text.trim_end().ends_with(",match"), "{text}");
    }
}
