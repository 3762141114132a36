// Start GOV.UK Frontend's components (error summary focus, notification banners,
// checkboxes...) once the module loads. A module script: the browsers the design system
// supports run it; others get the plain HTML, which works without it.
import { initAll } from "./vendor/govuk-frontend/govuk-frontend.min.js";

document.body.classList.add("govuk-frontend-supported", "js-enabled");
initAll();
