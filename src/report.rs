//! The `check` report: text tables and the JSON document of INTERFACE.md.
