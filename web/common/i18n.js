// Chinese and English text. Each page passes its dictionary: { key: [zh, en] }.
// The language is chosen once (stored), defaulting to the browser's.

const STORE_KEY = "mall.lang";

export function makeI18n(dictionary) {
  let lang = localStorage.getItem(STORE_KEY)
    || ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en");

  function t(key, vars) {
    const entry = dictionary[key];
    let text = entry ? entry[lang === "zh" ? 0 : 1] : key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.replaceAll(`{${name}}`, String(value));
    }
    return text;
  }

  return {
    t,
    get lang() { return lang; },
    setLang(next) {
      lang = next === "en" ? "en" : "zh";
      localStorage.setItem(STORE_KEY, lang);
      document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    },
  };
}
