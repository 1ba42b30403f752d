//! The black-box tests, as one binary: each file is a module, `common` their shared harness.
//! One binary links sea-orm, tonic and the service once instead of once per file, which on 2
//! cores is most of a clean build's time; nextest still runs every test in a process of its
//! own.

#[macro_use]
mod common;

mod abuse;
mod bbb_client;
mod bbb_fixtures;
mod bench_smoke;
mod callback;
mod check;
mod cli;
mod fleet;
mod fleet_service;
mod helm_chart;
mod lifecycle;
mod one_meeting;
mod placement_rules;
mod python_package;
mod replicas;
mod service;
mod sim;
mod store;
mod telemetry;
mod tls;
