//! Synthetic exports for benchmarks and load tests (not real patient data).

const HEADER: &str = "Index,Date,Time,Timestamp,New Device Time,BG Reading (mg/dL),Linked BG Meter ID,Temp Basal Amount (U/h),Temp Basal Type,Temp Basal Duration (hh:mm:ss),Bolus Type,Bolus Volume Selected (U),Bolus Volume Delivered (U),Programmed Bolus Duration (hh:mm:ss),Prime Type,Prime Volume Delivered (U),Suspend,Rewind,BWZ Estimate (U),BWZ Target High BG (mg/dL),BWZ Target Low BG (mg/dL),BWZ Carb Ratio (grams),BWZ Insulin Sensitivity (mg/dL),BWZ Carb Input (grams),BWZ BG Input (mg/dL),BWZ Correction Estimate (U),BWZ Food Estimate (U),BWZ Active Insulin (U),Alarm,Sensor Calibration BG (mg/dL),Sensor Glucose (mg/dL),ISIG Value,Daily Insulin Total (U),Raw-Type,Raw-Values,Raw-ID,Raw-Upload ID,Raw-Seq Num,Raw-Device Type";

/// A generated CareLink v1.0.1 export of `rows` data rows, for benchmarks: mostly 5-minute CGM rows, with the pump events of a real day
/// (scheduled basal, wizard + dual-wave bolus, linked BG, alarms, unabsorbed-insulin rows).
pub fn carelink_csv(rows: usize) -> Vec<u8> {
    let mut s = String::with_capacity(rows * 200);
    s.push_str("Medtronic Diabetes CareLink Personal Data Export File (v1.0.1) \nDEVICE INFO\nPump:,Paradigm Revel - 523,#736868,\n");
    s.push_str(HEADER);
    s.push('\n');
    let mut seq = 0u64;
    let mut minute = 0u64;
    let mut n = 0usize;
    while n < rows {
        // Consecutive real dates from 2015-01-01 (no wrap-around: every row is distinct).
        let t = chrono::NaiveDate::from_ymd_opt(2015, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            + chrono::Duration::minutes(minute as i64);
        let ts = t.format("%-m/%-d/%y,%H:%M:%S,%-m/%-d/%y %H:%M:%S").to_string();
        seq += 1;
        let g = 80 + (minute * 7 % 160);
        let line = match n % 40 {
            5 => format!(
                "{n},{ts},,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,BasalProfileStart,\"PATTERN_NAME=standard, PROFILE_INDEX=1, RATE=0.95, START_TIME=14400000, ACTION_REQUESTOR=pump\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            10 => format!(
                "{n},{ts},,187,#783436,,,,,,,,,,,,,,,,,,,,,,,,,,,BGReceived,\"AMOUNT=187, ACTION_REQUESTOR=paradigm link or b key, PARADIGM_LINK_ID=783436\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            11 => format!(
                "{n},{ts},,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,UnabsorbedInsulin,\"BOLUS_ESTIMATE_DATUM=1, INDEX=0, AMOUNT=1, RECORD_AGE=305, INSULIN_TYPE=null, INSULIN_ACTION_CURVE=240\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            12 => format!(
                "{n},{ts},,,,,,,,,,,,,,,,,6.5,120,90,10,40,65,0,0,6.5,0.0,,,,,,BolusWizardBolusEstimate,\"BG_INPUT=0, BG_UNITS=mg dl, CARB_INPUT=65, CARB_UNITS=grams, CARB_RATIO=10, INSULIN_SENSITIVITY=40, BG_TARGET_LOW=90, BG_TARGET_HIGH=120, BOLUS_ESTIMATE=6.5, CORRECTION_ESTIMATE=0, FOOD_ESTIMATE=6.5, UNABSORBED_INSULIN_TOTAL=0, UNABSORBED_INSULIN_COUNT=0, ACTION_REQUESTOR=pump\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            13 => format!(
                "{n},{ts},,,,,,,Dual/Normal,4.1,4.1,,,,,,,,,,,,,,,,,,,,,BolusNormal,\"AMOUNT=4.1, CONCENTRATION=null, PROGRAMMED_AMOUNT=4.1, ACTION_REQUESTOR=pump, ENABLE=true, IS_DUAL_COMPONENT=true, UNABSORBED_INSULIN_TOTAL=0\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            14 => format!(
                "{n},{ts},,,,,,,Dual/Square,2.4,2.4,02:00:00,,,,,,,,,,,,,,,,,,,,BolusSquare,\"AMOUNT=2.4, CONCENTRATION=null, PROGRAMMED_AMOUNT=2.4, ACTION_REQUESTOR=pump, DURATION=7200000, IS_DUAL_COMPONENT=true, UNABSORBED_INSULIN_TOTAL=0\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            20 => format!(
                "{n},{ts},,,,,,,,,,,,,,,,,,,,,,,,,,Sensor Alert: High Glucose (101),,,,,AlarmSensor,\"ALARM_TYPE=101, AMOUNT=192, ACTION_REQUESTOR=sensor\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
            _ => format!(
                "{n},{ts},,,,,,,,,,,,,,,,,,,,,,,,,,,,{g},16.54,,GlucoseSensorData,\"AMOUNT={g}, ISIG=16.54, VCNTR=null, BACKFILL_INDICATOR=null\",{seq},53811544,{seq},Paradigm Revel - 523"
            ),
        };
        s.push_str(&line);
        s.push('\n');
        n += 1;
        minute += 5;
    }
    s.into_bytes()
}
