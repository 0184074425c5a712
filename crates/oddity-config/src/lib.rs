//! oddity-config
