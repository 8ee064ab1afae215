//! The pure hot parts of a run, one row at a time (criterion): read and check a row, build the
//! request that goes on the wire, encode the row's results line.
//!
//! Run: `cargo bench --bench hot`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pcbulk::api::http::{CallIds, HttpTransport};
use pcbulk::api::Request;
use pcbulk::planner::{Planner, Verdict};
use pcbulk::results::{encode_line, Outcome, Status};

const HEADER: [&str; 5] = [
    "Customer ID",
    "Subscription ID",
    "Support Tenant ID",
    "Partner ID",
    "Name",
];
const ROW: [&str; 5] = [
    "c0000001-0000-4000-8000-000000000001",
    "D1000000-0000-4000-8000-00000000002A",
    "e0000001-0000-4000-8000-000000000001",
    "4391507",
    "Trey Research",
];

fn read_and_check_a_row(c: &mut Criterion) {
    let headers: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let planner = Planner::new(&headers, None).expect("a support-contact header");
    // A thousand rows per iteration, so the reader's buffers are set up once per thousand rows, as
    // in a run; criterion reports the time per row.
    const ROWS: u64 = 1000;
    let mut file = String::new();
    for _ in 0..ROWS {
        file.push_str(&ROW.join(","));
        file.push('\n');
    }
    let mut g = c.benchmark_group("read + check a support-contact row");
    g.throughput(Throughput::Elements(ROWS));
    g.bench_function("per row", |b| {
        b.iter(|| {
            let mut records = pcbulk::csvfile::Records::new(file.as_bytes(), b',');
            while let Some(rec) = records.next_record().unwrap() {
                let text = std::str::from_utf8(rec.bytes()).unwrap();
                let mut from = 0;
                let cells: Vec<&str> = rec
                    .ends()
                    .iter()
                    .map(|&to| {
                        let c = &text[from..to];
                        from = to;
                        c
                    })
                    .collect();
                let (_, verdict) = planner.plan_row(&cells).unwrap();
                assert!(matches!(verdict, Verdict::Ready(_)));
                black_box(verdict);
            }
        })
    });
    g.finish();
}

fn build_a_request(c: &mut Criterion) {
    let t = HttpTransport::new("http://127.0.0.1:9", std::time::Duration::from_secs(30)).unwrap();
    let ids = CallIds {
        request_id: uuid::Uuid::new_v4(),
        correlation_id: uuid::Uuid::new_v4(),
    };
    c.bench_function("build a support-contact PUT", |b| {
        b.iter(|| {
            let req = Request::put(
                format!(
                    "/customers/{}/subscriptions/{}/supportcontact",
                    ROW[0], ROW[1]
                ),
                serde_json::json!({
                    "SupportTenantId": ROW[2],
                    "SupportMpnId": ROW[3],
                    "Name": ROW[4],
                    "Attributes": {"ObjectType": "SupportContact"},
                }),
            );
            black_box(t.request(&req, ids, "token").unwrap());
        })
    });
}

fn encode_a_results_line(c: &mut Criterion) {
    let o = Outcome {
        row: 12345,
        line: 12346,
        status: Status::Succeeded,
        http_status: Some(200),
        error_code: String::new(),
        error_message: String::new(),
        attempts: 1,
        correlation_id: "6f1c0b8e-1a9d-4b8e-9f6e-0d6f2b0c7a11".into(),
        request_id: "0b2d6f4e-2c1a-4e8b-8d3f-5a6b7c8d9e0f".into(),
        duration_ms: 42,
        change: "support_mpn_id: \"1\" → \"4391507\"".into(),
    };
    c.bench_function("encode a results line", |b| {
        b.iter(|| black_box(encode_line(ROW.iter().copied(), &o, b',')))
    });
}

criterion_group!(
    hot,
    read_and_check_a_row,
    build_a_request,
    encode_a_results_line
);
criterion_main!(hot);
