use eventyay_bbb::sim::{SimConfig, SimServer};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn bench() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = SimServer::start(SimConfig::new("s")).await.unwrap();
        let base = sim.base_url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // 200 meetings with a few attendees each
        for i in 0..200 {
            let q = format!("name=Room+{i}&meetingID=m-{i}");
            let c = hex::encode(Sha256::digest(format!("create{q}s")));
            http.get(format!("{base}api/create?{q}&checksum={c}"))
                .send()
                .await
                .unwrap();
            for u in 0..5 {
                let q = format!("meetingID=m-{i}&fullName=U{u}&role=VIEWER&redirect=false");
                let c = hex::encode(Sha256::digest(format!("join{q}s")));
                http.get(format!("{base}api/join?{q}&checksum={c}"))
                    .send()
                    .await
                    .unwrap();
            }
        }
        for (call, q) in [
            ("isMeetingRunning", "meetingID=m-7".to_string()),
            ("getMeetingInfo", "meetingID=m-7".to_string()),
            ("getMeetings", String::new()),
        ] {
            let c = hex::encode(Sha256::digest(format!("{call}{q}s")));
            let sep = if q.is_empty() { "" } else { "&" };
            let url = format!("{base}api/{call}?{q}{sep}checksum={c}");
            let n = if call == "getMeetings" { 2000 } else { 20000 };
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..32 {
                let http = http.clone();
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..n / 32 {
                        let r = http.get(&url).send().await.unwrap();
                        assert_eq!(r.status(), 200);
                        r.bytes().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let el = started.elapsed();
            println!(
                "{call}: {} req in {:?} = {:.0} req/s",
                n,
                el,
                n as f64 / el.as_secs_f64()
            );
        }
        let _ = Duration::ZERO;
    });
}
