//! Owns the error a configuration section gives for a value it cannot run with ([`Invalid`]: the
//! key, dotted from the section, and why) and the range checks the sections share. Each section
//! validates itself (`TowerSpec::validate`, `TrainingConfig::validate`, `KafkaConfig::validate`,
//! …); `Config::load` reports the first failure.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {reason}")]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// `value` > 0.
pub fn positive(key: &str, value: usize) -> Result<(), Invalid> {
    if value == 0 {
        return Err(Invalid::new(key, "must be greater than 0"));
    }
    Ok(())
}

/// `value` is not blank.
pub fn non_empty(key: &str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(key, "must not be empty"));
    }
    Ok(())
}

/// A dropout probability: in [0, 1).
pub fn probability(key: &str, p: f32) -> Result<(), Invalid> {
    if !(0.0..1.0).contains(&p) {
        return Err(Invalid::new(key, "must be in [0, 1)"));
    }
    Ok(())
}

/// `low` ≤ `high`: `low_key` must not exceed `high_key`.
pub fn ordered(low_key: &str, low: usize, high_key: &str, high: usize) -> Result<(), Invalid> {
    if low > high {
        return Err(Invalid::new(low_key, format!("must not exceed {high_key}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_key() {
        assert_eq!(positive("a.b", 0).unwrap_err().key, "a.b");
        assert!(positive("a.b", 1).is_ok());
        assert_eq!(non_empty("a.c", "  ").unwrap_err().key, "a.c");
        assert!(probability("a.p", 1.0).is_err() && probability("a.p", 0.0).is_ok());
        assert_eq!(
            ordered("a.min", 3, "a.max", 2).unwrap_err().reason,
            "must not exceed a.max"
        );
    }
}
