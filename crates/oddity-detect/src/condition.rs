//! Where-conditions of rules.
