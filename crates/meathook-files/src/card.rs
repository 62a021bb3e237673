//! The dataset card: `README.md` with one `configs:` entry per pipeline,
//! for any sink that writes a dataset's files (the HuggingFace sink commits
//! it beside them).
//!
//! Pipelines have different schemas, and one config mixing them breaks the
//! dataset viewer, so each pipeline gets its own config listing
//! `data/{pipeline}/**/*.parquet` (the glob of [`layout`]).
//!
//! **Invariant:** merging only adds lines. Text outside the YAML header,
//! other YAML keys and configs the user wrote are kept byte for byte; a
//! config already named for a pipeline is never rewritten.
//!
//! [`local::ensure`] keeps the card of a local dataset directory, for any
//! number of writers at once.

use crate::layout;

pub mod local;

/// The card's path in the repository.
pub const CARD_PATH: &str = "README.md";

/// The config name of a pipeline: its escaped path segment, so it is a
/// plain word and matches its folder.
pub fn config_name(pipeline: &str) -> String {
    layout::pipeline_segment(pipeline)
}

/// The config names an existing card declares.
pub fn declared_configs(card: &str) -> Vec<String> {
    let Some((yaml, _)) = split_front_matter(card) else {
        return Vec::new();
    };
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- config_name:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        .collect()
}

/// The card with a config for each of `pipelines` (name, glob of its
/// files) that it lacks, or `None` if it has them all.
pub fn merge(existing: Option<&str>, pipelines: &[(String, String)]) -> Option<String> {
    let card = existing.unwrap_or("");
    let declared = declared_configs(card);
    let mut missing: Vec<&(String, String)> = pipelines
        .iter()
        .filter(|(p, _)| !declared.contains(&config_name(p)))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return None;
    }
    let mut entries = String::new();
    for (pipeline, glob) in missing {
        entries.push_str(&format!(
            "- config_name: {}\n  data_files:\n  - split: train\n    path: \"{glob}\"\n",
            config_name(pipeline),
        ));
    }
    Some(match split_front_matter(card) {
        None => {
            let body = if card.is_empty() {
                "\nRecords collected by meathook, one parquet file per pipeline and window.\n"
            } else {
                card
            };
            format!("---\nconfigs:\n{entries}---\n{body}")
        }
        Some((yaml, rest)) => {
            let mut out = String::with_capacity(card.len() + entries.len());
            out.push_str("---\n");
            let lines: Vec<&str> = yaml.lines().collect();
            match lines.iter().position(|l| l.trim_end() == "configs:") {
                None => {
                    for l in &lines {
                        out.push_str(l);
                        out.push('\n');
                    }
                    out.push_str("configs:\n");
                    out.push_str(&entries);
                }
                Some(at) => {
                    // The block runs until the next top-level key.
                    let end = lines[at + 1..]
                        .iter()
                        .position(|l| !(l.starts_with(' ') || l.starts_with('-') || l.is_empty()))
                        .map_or(lines.len(), |n| at + 1 + n);
                    for l in &lines[..end] {
                        out.push_str(l);
                        out.push('\n');
                    }
                    out.push_str(&entries);
                    for l in &lines[end..] {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
            out.push_str("---\n");
            out.push_str(rest);
            out
        }
    })
}

/// Splits `---\n{yaml}---\n{rest}`.
fn split_front_matter(card: &str) -> Option<(&str, &str)> {
    let body = card.strip_prefix("---\n")?;
    if let Some(rest) = body.strip_prefix("---\n") {
        return Some(("", rest));
    }
    let end = body.find("\n---\n").map(|i| (i + 1, i + 5)).or_else(|| {
        body.strip_suffix("\n---")
            .map(|b| (b.len() + 1, body.len()))
    })?;
    Some((&body[..end.0], &body[end.1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> (String, String) {
        (name.to_owned(), layout::pipeline_glob(name, "parquet"))
    }

    #[test]
    fn a_new_card_has_one_config_per_pipeline() {
        let card = merge(None, &[p("rainfall"), p("air_temperature")]).unwrap();
        assert!(card.starts_with("---\nconfigs:\n- config_name: air_temperature\n"));
        assert!(card.contains("    path: \"data/rainfall/**/*.parquet\"\n"));
        assert_eq!(declared_configs(&card), ["air_temperature", "rainfall"]);
        assert_eq!(merge(Some(&card), &[p("rainfall")]), None);
    }

    #[test]
    fn user_text_and_keys_are_kept() {
        let user = "---\nlicense: mit\nconfigs:\n- config_name: mine\n  data_files: \"x/*.csv\"\npretty_name: Weather\n---\n# My data\n\nHand-written notes.\n";
        let card = merge(Some(user), &[p("rainfall"), p("mine")]).unwrap();
        assert!(
            card.ends_with("---\n# My data\n\nHand-written notes.\n"),
            "{card}"
        );
        assert!(card.contains("license: mit\n"));
        assert!(card.contains("pretty_name: Weather\n"));
        assert!(
            card.contains(
                "- config_name: mine\n  data_files: \"x/*.csv\"\n- config_name: rainfall\n"
            )
        );
        assert_eq!(declared_configs(&card), ["mine", "rainfall"]);

        let plain = "# Notes only\n";
        let card = merge(Some(plain), &[p("test")]).unwrap();
        assert!(card.ends_with("---\n# Notes only\n"));
        assert!(card.contains("config_name: tes+74\n"));
        assert!(card.contains("data/tes+74/**/*.parquet"));

        let no_configs = "---\nlicense: mit\n---\nbody\n";
        let card = merge(Some(no_configs), &[p("a")]).unwrap();
        assert_eq!(
            card,
            "---\nlicense: mit\nconfigs:\n- config_name: a\n  data_files:\n  - split: train\n    path: \"data/a/**/*.parquet\"\n---\nbody\n"
        );
    }
}
