//! pcbulk's integration tests, as one test binary: the tests of every file run side by side in one
//! harness (and the crate links once, not once a file). Each module is one area; see
//! CONTRIBUTING.md for what each asserts.

mod common;

mod apply;
mod auth_login;
mod clearing;
mod closed_streams;
mod crash;
mod cron;
mod csv_conformance;
mod export;
mod files;
mod guard;
mod help;
mod hopeless;
mod hostile;
mod identity;
mod input;
mod interrupt;
mod journal;
mod layers;
mod lost_answers;
mod mapping;
mod output;
mod plans;
mod reader_props;
mod records;
mod report_manager;
mod resilience;
mod resources;
mod samples;
mod sandbox;
mod sandbox_tenant;
mod seams;
mod spreadsheets;
mod subscription;
mod terminal;
mod tls;
mod undo;
mod undo_drift;
mod words;
mod xlsx;
