//! File importers.
