//! Configuration: every directive ferrokv understands, in one table.
//!
//! [`directives::DIRECTIVES`] is the single list: it gives each directive's name, default,
//! flags, and how to parse and print it. The config file parser, command-line overrides,
//! CONFIG GET/SET and CONFIG REWRITE all go through it. The live configuration is an
//! immutable [`Config`] snapshot behind [`ConfigStore`]; CONFIG SET builds a new snapshot and
//! swaps it in, so readers on every thread never take a lock.

pub mod directives;
pub mod load;
pub mod store;
pub mod values;

pub use directives::{Config, DIRECTIVES, Directive};
pub use store::ConfigStore;
