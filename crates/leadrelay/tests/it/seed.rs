//! `leadrelay seed` on a small run: the history it builds is the one it describes (buyers with
//! several leads make fewer opportunities than leads, the team works them, deliveries are
//! recorded) and every query it times answered. Not timed: the figures are checked for their
//! meaning, never against a speed. Needs `PeopleStore::create_user` (the team).

use serde_json::Value;

use crate::support::binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_seed_builds_a_worked_history_and_times_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = (dir.path().join("data"), dir.path().join("seed.json"));
    let seed = || {
        let mut c = binary();
        c.arg("--data-dir").arg(&data).args(["seed", "--leads", "600", "--batch", "100", "--json"]).arg(&file);
        c
    };
    let output = seed().output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "seed failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let num = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("{k} is not a count in {j:#}"));
    assert_eq!(num("leads"), 600);
    let opportunities = num("opportunities");
    assert!((150..400).contains(&opportunities), "about three leads per buyer: {opportunities}");
    assert!(num("activities") > opportunities / 2 && num("status_updates") > 0 && num("checklist_ticks") > 0, "{j:#}");
    assert!((1100..=1200).contains(&num("deliveries")), "two per lead, none for a duplicate: {j:#}");
    let items = |k: &str| j[k]["items"].as_u64().unwrap_or_else(|| panic!("{k} has no items in {j:#}"));
    assert_eq!(items("kpis"), opportunities, "the KPIs count every opportunity");
    assert_eq!(items("kpis_by_offer"), opportunities);
    assert!(items("kpis_last_30_days") < opportunities, "the last month is a part of the history");
    assert_eq!((items("list_all"), items("list_owner")), (50, 50), "first pages are full");
    assert_eq!(items("list_unassigned"), 0, "round-robin assigned every one");
    for k in ["list_status_qualified", "list_due_overdue", "list_text"] {
        assert!((1..=50).contains(&items(k)), "{k}: {j:#}");
    }
    for k in ["kpis", "kpis_by_offer", "list_all", "list_text"] {
        assert!(j[k]["first_ms"].as_f64().is_some() && j[k]["median_ms"].as_f64().is_some(), "{k}: {j:#}");
    }
    assert!(stdout.contains("kpis group_by=offer") && stdout.contains("due=overdue"), "{stdout}");

    let again = seed().output().await.unwrap();
    assert!(!again.status.success(), "the publisher exists now");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}
