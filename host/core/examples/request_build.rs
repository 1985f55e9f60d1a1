//! Benchmark: reading and building policy request documents of growing size.
//!
//! Doubling the offerings should about double the time; a per-row scan of
//! the dictionaries (as before) shows up as the time quadrupling instead.
//!
//! ```sh
//! cargo run --release -p dovetail-core --example request_build
//! ```

use std::time::Instant;

use dovetail_core::policy::document::RequestDocument;
use dovetail_core::policy::parse::parse_request;

/// A selection document of `n` offerings, each a distinct instance type,
/// in three zones, and one launch request compatible with all of them.
fn document(n: usize) -> String {
    let mut text = String::from(r#"{"decision":"instance-selection","offerings":["#);
    for i in 0..n {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"instance_type":"m{}.{}xlarge","vcpu":4,"memory_mib":16384,"zone":"us-east-1{}","capacity_type":"spot","price_per_hour":{}}}"#,
            i % 1000,
            i / 1000,
            ["a", "b", "c"][i % 3],
            0.01 + (i % 997) as f64 * 1e-4
        ));
    }
    text.push_str(r#"],"requests":[{"node_pool":"default"}]}"#);
    text
}

/// Fastest of three runs, in seconds, of parsing and of building.
fn measure(text: &str) -> (f64, f64) {
    let (mut parse, mut build) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let t = Instant::now();
        let doc = parse_request(text).expect("a valid document");
        parse = parse.min(t.elapsed().as_secs_f64());
        let RequestDocument::InstanceSelection(doc) = doc else {
            unreachable!("a selection document")
        };
        let t = Instant::now();
        let request = doc.to_request().expect("within the limits");
        build = build.min(t.elapsed().as_secs_f64());
        assert_eq!(request.offerings.len(), doc.offerings.len());
    }
    (parse, build)
}

fn main() {
    println!(
        "{:>9} {:>9} {:>10} {:>10} {:>12} {:>14}",
        "offerings", "JSON MB", "parse ms", "build ms", "build µs/row", "× previous"
    );
    let mut previous: Option<f64> = None;
    for n in [25_000, 50_000, 100_000, 200_000] {
        let text = document(n);
        let (parse, build) = measure(&text);
        let total = parse + build;
        let growth = previous.map_or("-".to_string(), |p| format!("{:.2}", total / p));
        println!(
            "{n:>9} {:>9.1} {:>10.1} {:>10.1} {:>12.3} {growth:>14}",
            text.len() as f64 / 1e6,
            parse * 1e3,
            build * 1e3,
            build * 1e6 / n as f64
        );
        previous = Some(total);
    }
    println!(
        "(× previous: time of parse + build over the previous size's; 2 is linear, 4 quadratic)"
    );
}
