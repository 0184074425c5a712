//! oddity-server
