//! Platform names: what a valid one looks like, and the spellings the templates need.
//!
//! A name is lowercase ASCII words joined by `-` or `_` (`deribit`, `my-venue`), starting with a
//! letter: it must make a crate name (`nova-my-venue`), a Rust path (`nova_my_venue`), type
//! names (`MyVenueClient`), environment variables (`MY_VENUE_API_KEY`, as `nova_core::Settings`
//! spells them) and a settings section (`[platforms.my-venue]`).

use crate::error::GenError;

/// Names that would collide with the crates of nova itself.
const RESERVED: &[&str] = &[
    "core",
    "macros",
    "macros-core",
    "gen",
    "testkit",
    "cluster",
    "examples",
];

/// The longest name accepted (crates.io allows 64 characters for the whole crate name).
const MAX_LEN: usize = 59;

/// A validated platform name and its derived spellings.
///
/// ```
/// use nova_gen::PlatformName;
///
/// let name = PlatformName::parse("my-venue")?;
/// assert_eq!(name.crate_name(), "nova-my-venue");
/// assert_eq!(name.crate_ident(), "nova_my_venue");
/// assert_eq!(name.type_prefix(), "MyVenue");
/// assert_eq!(name.env_prefix(), "MY_VENUE");
/// assert!(PlatformName::parse("My Venue").is_err());
/// # Ok::<(), nova_gen::GenError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformName {
    name: String,
}

impl PlatformName {
    /// Checks a name.
    ///
    /// # Errors
    /// [`GenError::InvalidName`] saying what is wrong and what would be accepted.
    pub fn parse(name: &str) -> Result<Self, GenError> {
        let invalid = |reason: String| GenError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty".to_owned()));
        }
        if let Some(rest) = name
            .strip_prefix("nova-")
            .or_else(|| name.strip_prefix("nova_"))
        {
            return Err(invalid(format!(
                "give the platform's name without the `nova-` prefix (the crate is named `nova-{rest}`)"
            )));
        }
        if name.len() > MAX_LEN {
            return Err(invalid(format!("it is longer than {MAX_LEN} characters")));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Err(invalid(format!(
                "`{bad}` is not allowed: use lowercase ASCII letters, digits, `-` and `_` (e.g. `deribit`, `my-venue`)"
            )));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it must start with a letter".to_owned()));
        }
        if name.split(['-', '_']).any(str::is_empty) {
            return Err(invalid(
                "`-` and `_` must separate words: no leading, trailing or doubled separators"
                    .to_owned(),
            ));
        }
        if RESERVED.contains(&name) {
            return Err(invalid(format!("`nova-{name}` is a crate of nova itself")));
        }
        Ok(Self {
            name: name.to_owned(),
        })
    }

    /// The name as given: `my-venue`. Also the settings section, `[platforms.my-venue]`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The crate's name: `nova-my-venue`.
    #[must_use]
    pub fn crate_name(&self) -> String {
        format!("nova-{}", self.name)
    }

    /// The crate's name in Rust paths: `nova_my_venue`.
    #[must_use]
    pub fn crate_ident(&self) -> String {
        self.crate_name().replace('-', "_")
    }

    fn words(&self) -> impl Iterator<Item = &str> {
        self.name.split(['-', '_'])
    }

    /// The prefix of the generated types: `MyVenue` (`MyVenueClient`, `MyVenueAdapter`).
    #[must_use]
    pub fn type_prefix(&self) -> String {
        self.words().map(capitalize).collect()
    }

    /// The name for people: `My Venue`.
    #[must_use]
    pub fn title(&self) -> String {
        self.words().map(capitalize).collect::<Vec<_>>().join(" ")
    }

    /// The prefix of the credential variables: `MY_VENUE` (`MY_VENUE_API_KEY`), as
    /// `nova_core::Settings` derives it.
    #[must_use]
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// A host name for the placeholder endpoint: `my-venue.example.com`.
    #[must_use]
    pub fn host(&self) -> String {
        format!("{}.example.com", self.name.replace('_', "-"))
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        PlatformName::parse(name).unwrap_err().to_string()
    }

    #[test]
    fn spellings() {
        let n = PlatformName::parse("deribit").unwrap();
        assert_eq!(
            (n.type_prefix(), n.env_prefix(), n.title()),
            ("Deribit".into(), "DERIBIT".into(), "Deribit".into())
        );
        let n = PlatformName::parse("my_venue2").unwrap();
        assert_eq!(
            (n.crate_name(), n.type_prefix(), n.env_prefix()),
            (
                "nova-my_venue2".into(),
                "MyVenue2".into(),
                "MY_VENUE2".into()
            )
        );
        assert_eq!(n.host(), "my-venue2.example.com");
    }

    #[test]
    fn invalid_names_say_why() {
        assert!(reason("").contains("empty"));
        assert!(reason("Deribit").contains("`D` is not allowed"));
        assert!(reason("my venue").contains("` ` is not allowed"));
        assert!(reason("1inch").contains("start with a letter"));
        assert!(reason("a--b").contains("doubled"));
        assert!(reason("venue-").contains("trailing"));
        assert!(reason("nova-deribit").contains("without the `nova-` prefix"));
        assert!(reason("core").contains("crate of nova itself"));
        assert!(reason(&"a".repeat(60)).contains("longer than"));
    }
}
