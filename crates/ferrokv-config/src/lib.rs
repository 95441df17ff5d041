//! Configuration: every directive ferrokv understands, in one table.
//!
//! [`directives::DIRECTIVES`] is the single list: it gives each directive's name, aliases,
//! default, kind, flags and description. The config file parser, command-line overrides,
//! CONFIG GET/SET/REWRITE and the shipped `ferrokv.conf` all go through it. The live
//! configuration is an immutable [`Config`] snapshot behind [`ConfigStore`]; CONFIG SET builds
//! a new snapshot and swaps it in, so readers on every thread never take a lock.

pub mod directives;
pub mod hooks;
pub mod kind;
pub mod load;
pub mod rewrite;
pub mod special;
pub mod store;
pub mod template;
pub mod values;

pub use directives::{Config, DIRECTIVES, Directive};
pub use store::ConfigStore;
