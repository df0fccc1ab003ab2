//! Owns which reader opens a model path: a `.gguf` file ([`super::gguf`]) or a Hugging Face
//! directory ([`super::safetensors`]).

use std::path::Path;

use super::weights::ModelFiles;
use super::{gguf, safetensors, EncodeError};

impl ModelFiles {
    /// Reads a Hugging Face directory or, for a path ending in `.gguf`, a GGUF file.
    pub fn read(path: &Path) -> Result<Self, EncodeError> {
        if path.extension().is_some_and(|e| e == "gguf") {
            if !path.is_file() {
                return Err(EncodeError::MissingModel {
                    dir: path.to_path_buf(),
                    file: "(the .gguf file)",
                });
            }
            return gguf::read(path);
        }
        safetensors::read(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_says_how_to_get_one() {
        for path in ["/nonexistent/model", "/nonexistent/model.gguf"] {
            let msg = ModelFiles::read(Path::new(path)).err().unwrap().to_string();
            assert!(
                msg.contains(path) && msg.contains("scripts/fetch-model.sh"),
                "{msg}"
            );
        }
    }
}
