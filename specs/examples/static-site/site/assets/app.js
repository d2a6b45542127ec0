document.querySelector("h1").title = "reproducible";
