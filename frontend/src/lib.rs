//! The hydrate entry: the browser half of the isomorphic app.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker the browser tests wait for: the wasm app has taken over.
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &JsValue::from_str("__diabase_hydrated"), &JsValue::TRUE);
    }
}
