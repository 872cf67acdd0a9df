//! The end-to-end tests: the gateway binary, the simulated departments, the adapter components,
//! the stores and (when switched on) a real browser, driven over real HTTP. One test binary for
//! all of them (each file a module): every binary links the whole gateway, and one link instead
//! of dozens saves minutes and gigabytes per build. Run one file's tests with its module name,
//! e.g. `cargo test -p integration-tests --test e2e lookups::`.

mod hostile;
mod screens_common;

mod applications;
mod audit;
mod authoring;
mod browser_console;
mod browser_docs;
mod browser_harness;
mod browser_screens;
mod browser_supervisor;
mod calendar;
mod config_ui;
mod contract_0_1;
mod contract_0_2;
mod crypto_keys;
mod deadlines;
mod delivery_queue;
mod department_faults;
mod durability;
mod evaluations;
mod hot_load;
mod in_process;
mod isolation;
mod licence_sharing;
mod licences;
mod lifecycle;
mod lifecycle_departments;
mod log_lines;
mod lookups;
mod materials;
mod materials_durability;
mod materials_to_public_security_and_market_regulation;
mod materials_to_tax_and_real_estate;
mod memory_budget;
mod notifications;
mod one_thing;
mod operability;
mod personal_data;
mod reload;
mod screens_access;
mod screens_clerk;
mod security;
mod social_security;
mod supervision;
mod trace_export;
mod transport;
