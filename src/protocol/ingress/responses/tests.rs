//! Unit tests of the Responses adapter.
