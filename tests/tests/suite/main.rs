//! The one integration-test binary: a single link of the whole workspace, shared by every
//! cross-crate test.

mod admin_api;
mod aws_budgets;
mod blob_contract;
mod connections;
mod container_image;
mod contention;
mod crashes;
mod credentials;
mod deployment;
mod deployment_uploads;
mod emulated_aws;
mod events;
mod guidance;
mod lifecycle;
mod limits;
mod maven_clients;
mod maven_lambda;
mod maven_protocol;
mod memory;
mod metadata_contract;
mod model;
mod npm_clients;
mod npm_lambda;
mod npm_protocol;
mod npm_upstream;
mod oci_clients;
mod oci_lambda;
mod oci_protocol;
mod operator;
mod permissions;
mod readme;
mod snapshots;
mod upstreams;
mod web;
mod web_browser;
