//! oddity-pipeline
