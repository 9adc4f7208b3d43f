//! The markdown report: the run, the machine, the data set, the figures.

use std::fmt::Write;

use crate::baseline::CountMethod;
use crate::stats::{ms, secs};
use crate::{data, Args, BackendRun, Group, Target};

pub struct Context<'a> {
    pub args: &'a Args,
    pub started: chrono::DateTime<chrono::Local>,
    pub finished: chrono::DateTime<chrono::Local>,
    pub load_before: String,
    pub load_after: String,
    pub data: &'a data::Dataset,
    pub groups: &'a [Group],
    pub queries: &'a data::Queries,
    pub problems: &'a [String],
}

pub const SEARCH_P95_MS: u64 = 20;
pub const SUBTREE_P95_MS: u64 = 10;
pub const SQLITE_LOAD_SECS: u64 = 60;

pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let head = match s.len() % 3 {
        0 => 3,
        k => k,
    };
    let mut out = s[..head].to_string();
    for group in s.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Bytes or KiB as MiB with one decimal, truncated.
pub fn mib(bytes: u64) -> String {
    let tenths = bytes * 10 / (1024 * 1024);
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

fn file_line(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once([':', '='])?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The machine, toolchain and source lines of a report's "Run" section.
pub fn machine_lines() -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "- Machine: {} CPUs (`nproc`), {}, {} RAM, {} (kernel {})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        file_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into()),
        file_line("/proc/meminfo", "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| mib(k * 1024))
            .unwrap_or_else(|| "unknown".into()),
        file_line("/etc/os-release", "PRETTY_NAME").unwrap_or_else(|| "unknown OS".into()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    );
    let _ = writeln!(o, "- Toolchain: {}, release profile", command_output("rustc", &["--version"]));
    // Untrimmed: each porcelain line is two status columns, a space, then the path.
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let changed: Vec<&str> = dirty.lines().filter_map(|l| l.get(3..)).collect();
    let _ = write!(
        o,
        "- Source: git {}{}",
        command_output("git", &["rev-parse", "--short", "HEAD"]),
        match changed.len() {
            0 => String::new(),
            n if n <= 8 => format!(" with uncommitted changes in {}", changed.join(", ")),
            n => format!(" with uncommitted changes in {n} files ({}, …)", changed[..8].join(", ")),
        }
    );
    o
}

pub fn render(c: &Context, runs: &[BackendRun]) -> String {
    let mut o = String::new();
    let d = c.data;
    let members = d.members.len() as i64;
    let n_flows = d.flows.len() as i64;

    // ---- run and machine ----
    let argv: Vec<String> = std::env::args().collect();
    let command = std::env::var("KITE_BENCH_COMMAND").unwrap_or_else(|_| argv.join(" "));
    let _ = writeln!(o, "## Run\n");
    let _ = writeln!(o, "- Date: {} to {}", c.started.format("%Y-%m-%d %H:%M:%S %z"), c.finished.format("%H:%M:%S %z"));
    let _ = writeln!(o, "- Command: `{command}`");
    let _ = writeln!(o, "- Benchmark process: `{}`", argv.join(" "));
    let _ = writeln!(o, "{}", machine_lines());
    for r in runs {
        let _ = writeln!(o, "- {}: {}", r.name, r.version);
    }
    let _ = writeln!(
        o,
        "- Load average (1, 5, 15 min) at start: {}; at end: {} (the machine was shared with other work)",
        c.load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        c.load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    let _ = writeln!(
        o,
        "- Samples: {} per case after {} unmeasured warm-up requests, sequential, one client; a case stops early \
         only after {} samples and {} s (HTTP) or {} s (storage level): see n.",
        c.args.samples, c.args.warmup, c.args.min_samples, c.args.http_budget_secs, c.args.baseline_budget_secs
    );

    // ---- data set ----
    let _ = writeln!(o, "\n## Data set\n");
    let n_branches = d.branches.len() as i64;
    let _ = writeln!(
        o,
        "{} members ({} away from home with an open flow: {}.{:02}%), {} organizations: {} county \
         committees, {} town committees, {} general branches, {} home branches (mean {} members per branch), plus the \
         demo's destination committees and branches. Generated by `kite_demo::members` (seed {}) with the org tree \
         scaled in `crates/bench/src/data.rs`; generation took {} s and is not part of the load time.\n",
        thousands(members),
        thousands(n_flows),
        n_flows * 100 / members.max(1),
        n_flows * 10_000 / members.max(1) % 100,
        thousands(d.orgs.len() as i64),
        d.counties.len(),
        d.towns.len(),
        thousands(d.generals.len() as i64),
        thousands(n_branches),
        members / n_branches.max(1),
        c.args.seed,
        secs(std::time::Duration::from_secs_f64(d.generation_secs)),
    );
    let _ = writeln!(o, "| subtree class | subtrees queried | members in subtree | organizations in subtree |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    for g in c.groups {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            g.label,
            g.codes.len(),
            crate::range(g.members_min, g.members_max),
            crate::range(g.orgs_min, g.orgs_max)
        );
    }
    let _ = writeln!(
        o,
        "\nSearch inputs are drawn from the loaded members: {} full names, 2-character prefixes and surnames, {} \
         traditional-character spellings (e.g. 張偉 for 张伟) and {} ID numbers with their 14-, 10- and 6-digit prefixes.",
        c.queries.full_names.len(),
        c.queries.traditional.len(),
        c.queries.ids.len()
    );

    // ---- targets ----
    let _ = writeln!(o, "\n## Targets\n");
    let _ = writeln!(o, "| target | backend | measured | result |");
    let _ = writeln!(o, "|---|---|---|---|");
    for r in runs {
        if r.name == "SQLite" {
            let ok = r.load_total.as_secs_f64() < SQLITE_LOAD_SECS as f64;
            let note =
                if members == 1_000_000 { String::new() } else { format!(" ({} members, not 1M)", thousands(members)) };
            let _ = writeln!(
                o,
                "| bulk load of 1M members under {SQLITE_LOAD_SECS} s | {} | {} s{note} | {} |",
                r.name,
                secs(r.load_total),
                met(ok)
            );
        }
    }
    for (target, what, limit) in [
        (Target::Search, "searches (name and ID) p95", SEARCH_P95_MS),
        (Target::Subtree, "subtree counts p95, any subtree", SUBTREE_P95_MS),
    ] {
        for r in runs {
            let cases: Vec<_> = r.http.iter().filter(|h| h.target == target).collect();
            let Some(worst) = cases.iter().max_by_key(|h| h.stats.pct(95.0)) else { continue };
            let misses: Vec<String> = cases
                .iter()
                .filter(|h| h.stats.pct(95.0) >= limit * 1000)
                .map(|h| format!("{} ({} ms)", h.label, ms(h.stats.pct(95.0))))
                .collect();
            let measured = if misses.is_empty() {
                format!("worst p95 {} ms ({})", ms(worst.stats.pct(95.0)), worst.label)
            } else {
                format!("over the target: {}", misses.join("; "))
            };
            let _ = writeln!(o, "| {what} under {limit} ms | {} | {measured} | {} |", r.name, met(misses.is_empty()));
        }
    }

    // ---- load ----
    let _ = writeln!(
        o,
        "\n## Bulk load (store API: `Admin::insert_orgs`, `bulk_insert_members`, `bulk_insert_flows`, `recount`)\n"
    );
    let mut head = String::from("| backend |");
    let mut rule = String::from("|---|");
    if let Some(r) = runs.first() {
        for (p, _) in &r.phases {
            head.push_str(&format!(" {p} |"));
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(o, "{head} total | members/s | all rows/s | database size |");
    let _ = writeln!(o, "{rule}---:|---:|---:|---:|");
    let all_rows = members + n_flows + d.orgs.len() as i64;
    for r in runs {
        let mut line = format!("| {} |", r.name);
        for (_, t) in &r.phases {
            line.push_str(&format!(" {} s |", secs(*t)));
        }
        let total = r.load_total.as_secs_f64();
        let _ = writeln!(
            o,
            "{line} {} s | {} | {} | {} |",
            secs(r.load_total),
            thousands((members as f64 / total) as i64),
            thousands((all_rows as f64 / total) as i64),
            mib(r.db_bytes)
        );
    }
    let _ = writeln!(
        o,
        "\nTimed end to end from connecting to an empty database to the end of `recount` (indexes exist from the \
         migration and are maintained during the inserts). Database size after the run is \
         `page_count × page_size` on SQLite and `pg_database_size` on PostgreSQL."
    );
    for r in runs {
        if let Some((what, t)) = r.post_load {
            let _ = writeln!(o, "After the load, {}: {} s, not included above.", what, secs(t));
        }
    }

    // ---- HTTP ----
    let _ = writeln!(o, "\n## Through the server\n");
    let _ = writeln!(
        o,
        "The release `kite serve` on 127.0.0.1, an admin bearer token from `POST /api/v1/login`, one keep-alive \
         client (reqwest) in the same machine; time from sending the request to having read the whole answer. \
         Every answer is checked after the clock stops (200, members found, overview counts equal to the loaded rows).\n"
    );
    let _ = writeln!(o, "| backend | case | request | n | p50 ms | p95 ms | p99 ms | max ms | target p95 | inputs |");
    let _ = writeln!(o, "|---|---|---|---:|---:|---:|---:|---:|---|---|");
    for r in runs {
        for h in &r.http {
            let limit = match h.target {
                Target::Search => SEARCH_P95_MS,
                Target::Subtree => SUBTREE_P95_MS,
            };
            let _ = writeln!(
                o,
                "| {} | {} | `{}` | {} | {} | {} | {} | {} | < {limit} ms: {} | {} |",
                r.name,
                h.label,
                h.request,
                h.stats.n(),
                ms(h.stats.pct(50.0)),
                ms(h.stats.pct(95.0)),
                ms(h.stats.pct(99.0)),
                ms(h.stats.max()),
                met(h.stats.pct(95.0) < limit * 1000),
                h.detail
            );
        }
    }
    let _ = writeln!(o, "\n### Server memory (`/proc/<pid>/status` of `kite serve`)\n");
    let _ = writeln!(o, "| backend | VmRSS after login | VmRSS after the HTTP cases | VmHWM after the HTTP cases |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    for r in runs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            r.name,
            mib(r.mem_start.rss_kib * 1024),
            mib(r.mem_end.rss_kib * 1024),
            mib(r.mem_end.hwm_kib * 1024)
        );
    }
    let _ = writeln!(o, "\nThe PostgreSQL server's own memory is not included.");

    // ---- storage level ----
    let _ = writeln!(o, "\n## Storage level: subtree member count, product and baselines side by side\n");
    let _ = writeln!(
        o,
        "Same database, after the server stopped, one sqlx connection of the bench's own; time per query including \
         the driver round trip. Every answer is checked against the number of members loaded into the subtree."
    );
    for m in CountMethod::ALL {
        let _ = writeln!(o, "- {}", m.label());
    }
    let _ = writeln!(
        o,
        "\n| backend | subtree | members | organizations | method | n | p50 ms | p95 ms | p99 ms | max ms |"
    );
    let _ = writeln!(o, "|---|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for r in runs {
        for k in &r.counts {
            let g = &c.groups[k.group];
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                g.label,
                crate::range(g.members_min, g.members_max),
                crate::range(g.orgs_min, g.orgs_max),
                k.method.short(),
                k.stats.n(),
                ms(k.stats.pct(50.0)),
                ms(k.stats.pct(95.0)),
                ms(k.stats.pct(99.0)),
                ms(k.stats.max())
            );
        }
    }
    let _ = writeln!(o, "\n## Storage level: name search, product and baseline side by side\n");
    let _ = writeln!(
        o,
        "The product's statement for an admin (no scope filter): the first page (50 + 1 rows) joined to the \
         organization, ordered by `(name_key, id)`; the baseline filters with `name LIKE '%…%'` instead, same \
         columns, order and page. Rows are fetched, not decoded.\n"
    );
    let _ = writeln!(o, "| backend | input | method | n | p50 ms | p95 ms | p99 ms | max ms | rows per answer |");
    let _ = writeln!(o, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        for k in &r.names {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {}–{} |",
                r.name,
                k.input,
                k.method.label(),
                k.stats.n(),
                ms(k.stats.pct(50.0)),
                ms(k.stats.pct(95.0)),
                ms(k.stats.pct(99.0)),
                ms(k.stats.max()),
                k.rows_min,
                k.rows_max
            );
        }
    }
    let _ = writeln!(o, "\n## Query plans, as the engines chose them in this run\n");
    let _ = writeln!(
        o,
        "`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL, for the first subtree or input of each case."
    );
    for r in runs {
        let _ = writeln!(o, "\n<details><summary>{}</summary>\n", r.name);
        for (title, lines) in &r.plans {
            let _ = writeln!(o, "{title}\n\n```\n{}\n```\n", lines.join("\n"));
        }
        let _ = writeln!(o, "</details>");
    }
    if !c.problems.is_empty() {
        let _ = writeln!(o, "\n## Problems found by the checks\n");
        for p in c.problems {
            let _ = writeln!(o, "- {p}");
        }
    }
    let _ = writeln!(
        o,
        "\nPercentiles are nearest-rank (each one is a measured sample, never interpolated); times are truncated to \
         the microsecond and printed in milliseconds, load times truncated to the millisecond."
    );
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::thousands(-20_000), "-20,000");
    }
}
