//! oddity-api
