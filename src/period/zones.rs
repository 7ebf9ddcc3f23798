use super::*;

struct Zones {
    db: TimeZoneDatabase,
    by_name: HashMap<&'static str, TimeZone>,
    /// Spellings already looked up (any case), to their interned name.
    aliases: HashMap<String, &'static str>,
}

fn zones() -> &'static Mutex<Zones> {
    static ZONES: OnceLock<Mutex<Zones>> = OnceLock::new();
    ZONES.get_or_init(|| {
        Mutex::new(Zones {
            db: TimeZoneDatabase::bundled(),
            by_name: HashMap::new(),
            aliases: HashMap::new(),
        })
    })
}

/// The interned IANA name of `name`.
pub(super) fn intern(name: &str) -> Result<&'static str, Error> {
    let mut zones = zones().lock();
    if let Some(interned) = zones.aliases.get(name) {
        return Ok(interned);
    }
    let unknown = || Error::UnknownTimeZone {
        name: name.to_owned(),
    };
    if name.is_empty() || name.len() > 64 {
        return Err(unknown());
    }
    let tz = zones.db.get(name).map_err(|_| unknown())?;
    let canonical = tz.iana_name().unwrap_or(name).to_owned();
    let interned = match zones.by_name.get_key_value(canonical.as_str()) {
        Some((interned, _)) => *interned,
        None => {
            let interned: &'static str = Box::leak(canonical.into_boxed_str());
            zones.by_name.insert(interned, tz);
            interned
        }
    };
    zones.aliases.insert(name.to_owned(), interned);
    Ok(interned)
}

/// The time zone of an interned name.
pub(super) fn get(name: &'static str) -> Option<TimeZone> {
    zones().lock().by_name.get(name).cloned()
}
