//! Synthetic exports for benchmarks and load tests (not real patient data).

const HEADER: &str = "Index,Date,Time,Timestamp,New Device Time,BG Reading (mg/dL),Linked BG Meter ID,Temp Basal Amount (U/h),Temp Basal Type,Temp Basal Duration (hh:mm:ss),Bolus Type,Bolus Volume Selected (U),Bolus Volume Delivered (U),Programmed Bolus Duration (hh:mm:ss),Prime Type,Prime Volume Delivered (U),Suspend,Rewind,BWZ Estimate (U),BWZ Target High BG (mg/dL),BWZ Target Low BG (mg/dL),BWZ Carb Ratio (grams),BWZ Insulin Sensitivity (mg/dL),BWZ Carb Input (grams),BWZ BG Input (mg/dL),BWZ Correction Estimate (U),BWZ Food Estimate (U),BWZ Active Insulin (U),Alarm,Sensor Calibration BG (mg/dL),Sensor Glucose (mg/dL),ISIG Value,Daily Insulin Total (U),Raw-Type,Raw-Values,Raw-ID,Raw-Upload ID,Raw-Seq Num,Raw-Device Type";

/// A generated CareLink v1.0.1 export of `rows` data rows, for benchmarks: mostly 5-minute CGM rows, with the pump events of a real day
/// (scheduled basal, wizard + dual-wave bolus, linked BG, alarms, unabsorbed-insulin rows).
pub fn carelink_csv(rows: usize) -> Vec<u8> {
    let columns: Vec<&str> = HEADER.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).unwrap_or(0);
    let mut s = String::with_capacity(rows * 200);
    s.push_str("Medtronic Diabetes CareLink Personal Data Export File (v1.0.1) \nDEVICE INFO\nPump:,Paradigm Revel - 523,#736868,\n");
    s.push_str(HEADER);
    s.push('\n');
    let mut seq = 0u64;
    let mut minute = 0u64;
    let mut n = 0usize;
    let mut fields: Vec<String> = vec![String::new(); columns.len()];
    while n < rows {
        // Consecutive real dates from 2015-01-01 (no wrap-around: every row is distinct).
        let t =
            chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default().and_hms_opt(0, 0, 0).unwrap_or_default()
                + chrono::Duration::minutes(minute as i64);
        seq += 1;
        let g = 80 + (minute * 7 % 160);
        for f in fields.iter_mut() {
            f.clear();
        }
        let mut set = |name: &str, v: String| fields[at(name)] = v;
        set("Index", n.to_string());
        set("Date", t.format("%-m/%-d/%y").to_string());
        set("Time", t.format("%H:%M:%S").to_string());
        set("Timestamp", t.format("%-m/%-d/%y %H:%M:%S").to_string());
        let (raw_type, raw_values): (&str, String) = match n % 40 {
            5 => ("BasalProfileStart", "PATTERN_NAME=standard, PROFILE_INDEX=1, RATE=0.95, START_TIME=14400000, ACTION_REQUESTOR=pump".into()),
            10 => {
                set("BG Reading (mg/dL)", "187".into());
                set("Linked BG Meter ID", "#783436".into());
                ("BGReceived", "AMOUNT=187, ACTION_REQUESTOR=paradigm link or b key, PARADIGM_LINK_ID=783436".into())
            }
            11 => ("UnabsorbedInsulin", "BOLUS_ESTIMATE_DATUM=1, INDEX=0, AMOUNT=1, RECORD_AGE=305, INSULIN_TYPE=null, INSULIN_ACTION_CURVE=240".into()),
            12 => {
                for (c, v) in [
                    ("BWZ Estimate (U)", "6.5"),
                    ("BWZ Target High BG (mg/dL)", "120"),
                    ("BWZ Target Low BG (mg/dL)", "90"),
                    ("BWZ Carb Ratio (grams)", "10"),
                    ("BWZ Insulin Sensitivity (mg/dL)", "40"),
                    ("BWZ Carb Input (grams)", "65"),
                    ("BWZ BG Input (mg/dL)", "0"),
                    ("BWZ Correction Estimate (U)", "0"),
                    ("BWZ Food Estimate (U)", "6.5"),
                    ("BWZ Active Insulin (U)", "0.0"),
                ] {
                    set(c, v.into());
                }
                ("BolusWizardBolusEstimate", "BG_INPUT=0, BG_UNITS=mg dl, CARB_INPUT=65, CARB_UNITS=grams, CARB_RATIO=10, INSULIN_SENSITIVITY=40, BG_TARGET_LOW=90, BG_TARGET_HIGH=120, BOLUS_ESTIMATE=6.5, CORRECTION_ESTIMATE=0, FOOD_ESTIMATE=6.5, UNABSORBED_INSULIN_TOTAL=0, UNABSORBED_INSULIN_COUNT=0, ACTION_REQUESTOR=pump".into())
            }
            13 => {
                set("Bolus Type", "Dual/Normal".into());
                set("Bolus Volume Selected (U)", "4.1".into());
                set("Bolus Volume Delivered (U)", "4.1".into());
                ("BolusNormal", "AMOUNT=4.1, CONCENTRATION=null, PROGRAMMED_AMOUNT=4.1, ACTION_REQUESTOR=pump, ENABLE=true, IS_DUAL_COMPONENT=true, UNABSORBED_INSULIN_TOTAL=0".into())
            }
            14 => {
                set("Bolus Type", "Dual/Square".into());
                set("Bolus Volume Selected (U)", "2.4".into());
                set("Bolus Volume Delivered (U)", "2.4".into());
                set("Programmed Bolus Duration (hh:mm:ss)", "02:00:00".into());
                ("BolusSquare", "AMOUNT=2.4, CONCENTRATION=null, PROGRAMMED_AMOUNT=2.4, ACTION_REQUESTOR=pump, DURATION=7200000, IS_DUAL_COMPONENT=true, UNABSORBED_INSULIN_TOTAL=0".into())
            }
            20 => {
                set("Alarm", "Sensor Alert: High Glucose (101)".into());
                ("AlarmSensor", "ALARM_TYPE=101, AMOUNT=192, ACTION_REQUESTOR=sensor".into())
            }
            _ => {
                set("Sensor Glucose (mg/dL)", g.to_string());
                set("ISIG Value", "16.54".into());
                ("GlucoseSensorData", format!("AMOUNT={g}, ISIG=16.54, VCNTR=null, BACKFILL_INDICATOR=null"))
            }
        };
        set("Raw-Type", raw_type.into());
        set("Raw-Values", format!("\"{raw_values}\""));
        set("Raw-ID", seq.to_string());
        set("Raw-Upload ID", "53811544".into());
        set("Raw-Seq Num", seq.to_string());
        set("Raw-Device Type", "Paradigm Revel - 523".into());
        s.push_str(&fields.join(","));
        s.push('\n');
        n += 1;
        minute += 5;
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_have_the_header_columns_and_one_device() {
        let csv = super::carelink_csv(80);
        let text = String::from_utf8(csv).expect("utf-8");
        let width = super::HEADER.split(',').count();
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).filter(|r| r.len() > 5).collect();
        assert_eq!(rows.len(), 81, "header and 80 rows");
        for r in &rows {
            assert_eq!(r.len(), width, "{r:?}");
            assert_eq!(&r[width - 1], if r[0] == *"Index" { "Raw-Device Type" } else { "Paradigm Revel - 523" });
        }
        let devices = crate::import::import(text.as_bytes(), crate::import::Format::CarelinkCsv)
            .expect("import")
            .filter(|i| matches!(i, crate::import::Item::Device(_)))
            .count();
        assert_eq!(devices, 1, "one pump, announced once");
    }
}
