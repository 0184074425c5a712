//! Models on feature vectors: Isolation Forest, LOF, One-Class SVM, streaming forest, ensemble.
