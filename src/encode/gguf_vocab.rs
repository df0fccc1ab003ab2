//! Owns rebuilding a model's tokenizer from GGUF metadata (`tokenizer.ggml.*`), for the two
//! tokenizer models llama.cpp writes for our families: byte-level BPE (`gpt2`: llama, qwen2) and
//! WordPiece (`bert`: NomicBERT), the latter from llama.cpp's phantom-space vocabulary.

use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// llama.cpp's token type of a control token (`[PAD]`, `[CLS]`, …).
const CONTROL: i32 = 3;

/// GPT-2 style byte-level BPE as llama.cpp's `gpt2` tokenizer model (digits split one by one, as
/// SmolLM2's and Qwen2's pre-tokenizers do).
pub fn byte_level_bpe(tokens: Vec<String>, merges: Vec<String>) -> Result<Tokenizer, String> {
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or(format!("bad merge {m:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    Ok(tokenizer)
}

/// BERT's uncased WordPiece (lower-casing, accent stripping, `[CLS] … [SEP]`) from llama.cpp's
/// vocabulary, where a word-initial piece carries a leading `▁` and a continuation none: `▁word`
/// → `word`, `piece` → `##piece`, bracketed and control tokens unchanged.
pub fn word_piece(tokens: Vec<String>, types: Vec<i32>) -> Result<Tokenizer, String> {
    if types.len() != tokens.len() {
        return Err(format!(
            "{} tokens but {} token types",
            tokens.len(),
            types.len()
        ));
    }
    let pieces: Vec<String> = tokens
        .into_iter()
        .zip(&types)
        .map(|(t, &ty)| {
            if ty == CONTROL || (t.starts_with('[') && t.ends_with(']')) {
                t
            } else if let Some(word) = t.strip_prefix('\u{2581}') {
                word.to_string()
            } else {
                format!("##{t}")
            }
        })
        .collect();
    // (tokenizers' vocabulary map type, the same for WordPiece as for BPE)
    let vocab: tokenizers::models::bpe::Vocab = pieces.iter().cloned().zip(0u32..).collect();
    let id = |token: &str| {
        vocab
            .get(token)
            .copied()
            .ok_or(format!("no {token} in the vocabulary"))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    id("[UNK]")?;
    let model = WordPiece::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .map_err(|e| e.to_string())?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    let control: Vec<AddedToken> = pieces
        .iter()
        .zip(&types)
        .filter(|(_, &ty)| ty == CONTROL)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(control)
        .map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_piece_restores_bert_pieces_and_specials() {
        let tokens = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "\u{2581}micro",
            "scope",
            "\u{2581}lens",
            "\u{2581}.",
        ]
        .map(String::from)
        .to_vec();
        let types = vec![3, 3, 3, 3, 1, 1, 1, 1];
        let tokenizer = word_piece(tokens, types).unwrap();
        let encoding = tokenizer.encode("Microscope LENS.", true).unwrap();
        assert_eq!(encoding.get_ids(), &[2, 4, 5, 6, 7, 3]);
        assert_eq!(
            tokenizer.encode("zebra", true).unwrap().get_ids(),
            &[2, 1, 3]
        );
    }
}
