//! Wall-clock times as logs print them (syslog `Mar 27 20:48:45`, RFC 3339, IPMI SEL
//! `03/27/2024 12:48:44`), reduced to seconds within a year so that events of different
//! sources can be compared. Sources often disagree on the time zone (the BMC keeps UTC,
//! syslog local time): [`WallTime::near`] accepts whole-hour offsets.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct WallTime {
    pub year: Option<u16>,
    pub month: u8,
    pub day: u8,
    pub second_of_day: u32,
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS_BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn hms(s: &str) -> Option<u32> {
    let mut it = s.split(':');
    let h: u32 = it.next()?.trim().parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it.next()?.get(..2)?.parse().ok()?;
    (h < 24 && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec)
}

impl WallTime {
    /// `Mar 27 20:48:45[.123]`, `2024-03-27T20:48:45...`, `03/27/2024 12:48:44`, crash
    /// `Sat Mar 28 00:12:31 CST 2024`.
    pub fn parse(s: &str) -> Option<WallTime> {
        let s = s.trim();
        if s.len() >= 19 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
            return Some(WallTime {
                year: s[..4].parse().ok(),
                month: s[5..7].parse().ok()?,
                day: s[8..10].parse().ok()?,
                second_of_day: hms(&s[11..19])?,
            });
        }
        if s.len() >= 19 && s.as_bytes()[2] == b'/' && s.as_bytes()[5] == b'/' {
            return Some(WallTime {
                month: s[..2].parse().ok()?,
                day: s[3..5].parse().ok()?,
                year: s[6..10].parse().ok(),
                second_of_day: hms(s[10..].trim())?,
            });
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        let m = words.iter().position(|w| MONTHS.contains(w))?;
        let month = MONTHS.iter().position(|x| *x == words[m])? as u8 + 1;
        let day = words.get(m + 1)?.parse().ok()?;
        let second_of_day = hms(words.get(m + 2)?)?;
        let year = words.iter().skip(m + 3).find_map(|w| (w.len() == 4).then(|| w.parse().ok()).flatten());
        Some(WallTime { year, month, day, second_of_day })
    }

    /// Seconds since the start of the year (a non-leap year: only differences matter).
    pub fn seconds(&self) -> i64 {
        let m = usize::from(self.month.clamp(1, 12) - 1);
        (i64::from(DAYS_BEFORE[m]) + i64::from(self.day.max(1)) - 1) * 86400 + i64::from(self.second_of_day)
    }

    /// Seconds from `self` to `other`, allowing a whole-hour time-zone difference of up to
    /// 14 hours: the smallest residue is returned with the offset used.
    pub fn distance(&self, other: &WallTime) -> (i64, i64) {
        let d = other.seconds() - self.seconds();
        (-14..=14).map(|h| (d - h * 3600, h)).min_by_key(|(r, _)| r.abs()).unwrap_or((d, 0))
    }

    pub fn near(&self, other: &WallTime, within_s: i64) -> bool {
        self.distance(other).0.abs() <= within_s
    }
}

impl std::fmt::Display for WallTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.second_of_day;
        if let Some(y) = self.year {
            write!(f, "{y}-")?;
        }
        write!(f, "{:02}-{:02} {:02}:{:02}:{:02}", self.month, self.day, s / 3600, s / 60 % 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_003_sel_and_syslog_agree_modulo_time_zone() {
        // SEL (BMC, UTC) and /var/log/messages (CST, UTC+8) from seed 003
        let sel = WallTime::parse("03/27/2024 12:48:44").unwrap();
        let syslog = WallTime::parse("Mar 27 20:48:45").unwrap();
        assert_eq!(sel.distance(&syslog), (1, 8));
        assert!(sel.near(&syslog, 120));
        let later = WallTime::parse("Mar 28 17:04:54").unwrap();
        assert!(!sel.near(&later, 120));
        assert_eq!(WallTime::parse("2024-03-27T20:48:45.46512Z").unwrap().second_of_day, 20 * 3600 + 48 * 60 + 45);
        assert_eq!(WallTime::parse("Sat Mar 28 00:12:31 CST 2024").unwrap().year, Some(2024));
    }
}
