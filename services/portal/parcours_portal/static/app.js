// The only script: a language choice applies at once (the form still has a button without JS).
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
});
