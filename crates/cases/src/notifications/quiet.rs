//! Quiet hours (`[notifications] quiet_hours`, Beijing time): a chase that arises in them is due
//! when they end. The instant it arose may be a rehearsed one (a light scan run at another
//! instant, see [`super::chases`]): the chase then waits as long from now as it would have
//! waited from that instant.

use gateway_base::config::NotificationsConfig;

const MINUTE: i64 = 60_000;
const DAY_MINUTES: i64 = 24 * 60;

/// The Beijing minute of the day at `at_ms`.
fn beijing_minute(at_ms: i64) -> u32 {
    ((at_ms.div_euclid(MINUTE) + 8 * 60).rem_euclid(DAY_MINUTES)) as u32
}

/// How long a chase arising at `at_ms` waits: 0 outside quiet hours, else until they end.
pub fn hold_ms(config: &NotificationsConfig, at_ms: i64) -> i64 {
    let Some((_, end)) = config.quiet else {
        return 0;
    };
    let minute = beijing_minute(at_ms);
    if !config.is_quiet(minute) {
        return 0;
    }
    let (minute, end) = (i64::from(minute), i64::from(end));
    let minutes = if end > minute {
        end - minute
    } else {
        end + DAY_MINUTES - minute
    };
    minutes * MINUTE - at_ms.rem_euclid(MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_base::time::ms;
    use time::macros::datetime;

    fn config(quiet: &str) -> NotificationsConfig {
        let mut config: NotificationsConfig =
            toml::from_str("channel = \"sms\"\nsignature = \"【x】\"").unwrap();
        config.quiet = gateway_base::config::notifications::parse_quiet_hours(quiet);
        config
    }

    #[test]
    fn a_chase_in_quiet_hours_waits_for_their_end() {
        let c = config("22:00-08:00");
        // 23:30 Beijing: until 08:00 the next morning.
        let at = ms(datetime!(2026-12-10 23:30 +8));
        assert_eq!(hold_ms(&c, at), 8 * 3_600_000 + 30 * 60_000);
        // 07:59:30: half a minute.
        assert_eq!(hold_ms(&c, ms(datetime!(2026-12-11 07:59:30 +8))), 30_000);
        // 08:00 and 21:59: not held.
        assert_eq!(hold_ms(&c, ms(datetime!(2026-12-11 08:00 +8))), 0);
        assert_eq!(hold_ms(&c, ms(datetime!(2026-12-11 21:59 +8))), 0);
        // Midday quiet hours.
        let lunch = config("12:00-13:00");
        assert_eq!(
            hold_ms(&lunch, ms(datetime!(2026-12-11 12:15 +8))),
            45 * 60_000
        );
        assert_eq!(hold_ms(&config("22:00-08:00x"), at), 0, "no quiet hours");
    }
}
