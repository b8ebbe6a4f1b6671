//! SQL (as Django and people write it) → MongoDB command plans.
#![deny(unsafe_code)]
