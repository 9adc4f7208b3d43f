#!/usr/bin/env python3
"""Splink (DuckDB backend) on the screening benchmark's files: the baseline of
scripts/bench-screen.sh.

Reads DIR/members_norm.csv and DIR/roster_norm.csv (the fields as the engine's normalizer
gives them, written by `screen_bench gen --splink`), trains a Fellegi-Sunter model as the
Splink documentation recommends (u by random sampling, then EM once per blocking rule),
predicts the pairs above the review threshold and writes them in the interface of
`kite screen match` (roster_line,member_id_number,score,band), so that one scorer reads
both engines' output. Prints the time of each step and the settings as markdown.

    python scripts/splink_baseline.py --dir DIR --out DIR/splink_matches.csv
"""

import argparse
import json
import logging
import os
import sys
import time

import duckdb
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

MATCH = 0.99
REVIEW = 0.5

# The blocking rules: the same kinds of keys as the engine's (matcher::block_keys), less
# the engine's name-only block for rows without a birth date and without its cap on
# block size (500 members), which Splink does not have.
PREDICTION_RULES = [
    ("exact ID", block_on("id")),
    ("birth date + first pinyin letter", block_on("birth_date", "substr(pinyin, 1, 1)")),
    ("pinyin + birth year", block_on("pinyin", "birth_year")),
    ("phone", block_on("phone")),
    ("ID prefix (county + birth date, 14 characters)", block_on("substr(id, 1, 14)")),
]

# EM once per way of finding pairs, as the engine trains (one session per rule); each
# session leaves out the comparisons that use its blocking columns.
TRAINING_RULES = PREDICTION_RULES[:4]


def comparisons():
    return [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("name"),
                cll.ExactMatchLevel("name"),
                cll.ExactMatchLevel("pinyin"),
                cll.JaroWinklerLevel("pinyin", 0.9),
                cll.ElseLevel(),
            ],
            comparison_description="name: exact / same pinyin / pinyin Jaro-Winkler >= 0.9 / else",
        ),
        cl.DamerauLevenshteinAtThresholds("id", [1, 2]),
        cl.CustomComparison(
            output_column_name="birth_date",
            comparison_levels=[
                cll.NullLevel("birth_year"),
                cll.ExactMatchLevel("birth_date"),
                cll.CustomLevel(
                    "birth_year_l = birth_year_r AND birth_md_l = birth_dm_r",
                    label_for_charts="day and month swapped",
                ),
                cll.ExactMatchLevel("birth_ym"),
                cll.ExactMatchLevel("birth_year"),
                cll.ElseLevel(),
            ],
            comparison_description="birth date: exact / day and month swapped / same month / same year / else",
        ),
        cl.ExactMatch("gender"),
        cl.CustomComparison(
            output_column_name="phone",
            comparison_levels=[
                cll.NullLevel("phone"),
                cll.ExactMatchLevel("phone"),
                cll.CustomLevel("right(phone_l, 8) = right(phone_r, 8)", label_for_charts="last 8 digits"),
                cll.DamerauLevenshteinLevel("phone", 1),
                cll.ElseLevel(),
            ],
            comparison_description="phone: exact / last 8 digits / one edit / else",
        ),
        cl.JaroWinklerAtThresholds("address", [0.9, 0.8]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--u-max-pairs", type=float, default=1e7)
    ap.add_argument("--recall", type=float, default=0.8, help="assumed recall of the exact-ID rule for the prior")
    ap.add_argument("--settings-out", help="write the settings as markdown here")
    ap.add_argument("--log", help="Splink's log file")
    args = ap.parse_args()

    if args.log:
        logging.basicConfig(filename=args.log, level=logging.INFO)
    logging.getLogger("splink").setLevel(logging.INFO if args.log else logging.WARNING)

    times = []
    start = time.perf_counter()
    clock = start

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        times.append((name, now - clock))
        clock = now

    con = duckdb.connect()
    for table in ("members", "roster"):
        path = os.path.join(args.dir, f"{table}_norm.csv")
        con.execute(
            f"CREATE TABLE {table} AS SELECT * REPLACE (CAST(unique_id AS BIGINT) AS unique_id) "
            f"FROM read_csv('{path}', header = true, all_varchar = true)"
        )
    db_api = DuckDBAPI(con)
    members = db_api.register("members", dataset_display_name="members")
    roster = db_api.register("roster", dataset_display_name="roster")
    lap("load the normalized CSVs into DuckDB")

    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[r for _, r in PREDICTION_RULES],
        comparisons=comparisons(),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([members, roster], settings)

    linker.training.estimate_probability_two_random_records_match([block_on("id")], recall=args.recall)
    lap("prior (exact-ID rule, recall %.2f)" % args.recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=args.u_max_pairs, seed=1)
    lap("u by random sampling (max_pairs %.0e)" % args.u_max_pairs)
    for name, rule in TRAINING_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
        lap(f"EM blocked on {name}")
    train_secs = sum(t for n, t in times[1:])

    predictions = linker.inference.predict(threshold_match_probability=REVIEW)
    lap("predict (threshold %.2f)" % REVIEW)
    pairs = con.execute(f"SELECT count(*) FROM {predictions.physical_name}").fetchone()[0]
    cols = {r[0] for r in con.execute(f"DESCRIBE {predictions.physical_name}").fetchall()}
    if "source_dataset_l" not in cols:
        sys.exit(f"no source_dataset_l among the prediction's columns: {sorted(cols)}")
    roster_left = "source_dataset_l = 'roster'"
    con.execute(
        f"""COPY (
            SELECT CASE WHEN {roster_left} THEN unique_id_l ELSE unique_id_r END AS roster_line,
                   CASE WHEN {roster_left} THEN id_r ELSE id_l END AS member_id_number,
                   round(match_probability, 6) AS score,
                   CASE WHEN match_probability >= {MATCH} THEN 'match' ELSE 'review' END AS band
            FROM {predictions.physical_name}
            ORDER BY roster_line, score DESC
        ) TO '{args.out}' (HEADER, DELIMITER ',')"""
    )
    lap("write the pairs")
    total = time.perf_counter() - start

    # How many pairs the blocking rules give (for the report).
    print("| step | seconds |\n|---|---:|")
    for name, secs in times:
        print(f"| {name} | {secs:.3f} |")
    print(f"| **end to end** | **{total:.3f}** |")
    print(f"\ntraining {train_secs:.3f} s; {pairs} pairs at probability >= {REVIEW}")
    print(f"SPLINK_SECONDS {total:.3f} {train_secs:.3f} {times[-2][1]:.3f}")

    if args.settings_out:
        with open(args.settings_out, "w") as f:
            f.write(f"Splink {splink.__version__}, DuckDB {duckdb.__version__}, link_only, ")
            f.write(f"u from random sampling (max_pairs {args.u_max_pairs:.0e}, seed 1), ")
            f.write(f"prior from the exact-ID rule with recall {args.recall}, ")
            f.write("EM (u fixed) once per training rule, predict at probability ")
            f.write(f">= {REVIEW}; band match from {MATCH}.\n\n")
            f.write("- Blocking rules for prediction: ")
            f.write("; ".join(f"{n} (`{r.get_blocking_rule('duckdb').blocking_rule_sql}`)" for n, r in PREDICTION_RULES))
            f.write("\n- EM sessions blocked on: " + "; ".join(n for n, _ in TRAINING_RULES) + "\n")
            f.write("- Comparisons:\n")
            for c in comparisons():
                d = c.get_comparison("duckdb").as_dict()
                levels = [lvl.get("label_for_charts") or lvl["sql_condition"] for lvl in d["comparison_levels"]]
                f.write(f"  - {d['output_column_name']}: " + " / ".join(f"`{x}`" for x in levels) + "\n")
            model = linker.misc.save_model_to_json() if hasattr(linker.misc, "save_model_to_json") else None
            if model is not None:
                f.write("\nTrained prior (probability two random records match): ")
                f.write(f"{model.get('probability_two_random_records_match', float('nan')):.3e}\n")
    with open(os.path.join(os.path.dirname(args.out) or ".", "splink_model.json"), "w") as f:
        try:
            json.dump(linker.misc.save_model_to_json(), f, indent=1, default=str)
        except Exception as e:  # the model file is a convenience only
            f.write(json.dumps({"error": str(e)}))


if __name__ == "__main__":
    main()
