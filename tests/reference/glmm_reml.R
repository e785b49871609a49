# Reference values for crtstats.glmm(method = "laplace-reml"): glmmTMB(REML = TRUE).
#
# Run from the project folder:  Rscript tests/reference/glmm_reml.R
# Reads the data sets written by tests/reference/glmm.R (tests/reference/data/glmm_*.csv)
# and writes tests/reference/glmm_reml.json (full precision). glmmTMB with REML = TRUE
# treats the fixed effects as random with a flat prior and maximises the Laplace
# approximation of the restricted likelihood; the optimiser (nlminb) is run to a
# relative tolerance of 1e-14 (max_gradient records the gradient of the objective in
# theta = log SD at the optimum).

suppressPackageStartupMessages({
  library(glmmTMB)
  library(jsonlite)
})

data_dir <- file.path("tests", "reference", "data")
read_data <- function(name) {
  read.csv(file.path(data_dir, paste0("glmm_", name, ".csv")), stringsAsFactors = FALSE)
}
cbpp <- read_data("cbpp")
cbpp01 <- read_data("cbpp01")
trial <- read_data("trial01")
counts_pois <- read_data("counts_pois")
grouse <- read_data("grouseticks")
flat <- read_data("flat01")

tight <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14,
                                       x.tol = 1e-12))

tmb_out <- function(fit) {
  v <- vcov(fit)$cond
  re <- ranef(fit, condVar = TRUE)$cond[[1]]
  list(
    names = names(fixef(fit)$cond),
    estimate = unname(fixef(fit)$cond),
    std_error = unname(sqrt(diag(v))),
    vcov = unname(v),
    sigma2 = unname(VarCorr(fit)$cond[[1]][1, 1]),
    loglik = as.numeric(logLik(fit)),
    nobs = nobs(fit),
    ranef_levels = rownames(re),
    ranef_mode = unname(re[, 1]),
    ranef_se = unname(sqrt(attr(re, "condVar")[1, 1, ])),
    max_gradient = max(abs(fit$obj$gr(fit$fit$par))),
    pdHess = fit$sdr$pdHess
  )
}

run <- function(formula, data, family) {
  tmb_out(glmmTMB(formula, data = data, family = family, REML = TRUE, control = tight))
}

ref <- list(
  versions = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                  TMB = as.character(packageVersion("TMB"))),
  cbpp = run(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial),
  cbpp01 = run(y ~ period + (1 | herd), cbpp01, binomial),
  trial01 = run(admitted ~ arm + stratum + pre_prop + age_c + (1 | team_id), trial,
                binomial),
  trial01_team = run(admitted ~ arm + stratum + pre_prop + (1 | team_id), trial, binomial),
  counts_pois = run(admissions ~ arm * period + offset(log_users) + (1 | team_id),
                    counts_pois, poisson),
  grouseticks = run(ticks ~ year + cheight + (1 | brood), grouse, poisson),
  flat01 = run(y ~ x + (1 | team_id), flat, binomial),
  flat01_glm = {
    g <- glm(y ~ x, data = flat, family = binomial,
             control = glm.control(epsilon = 1e-14, maxit = 100))
    list(estimate = unname(coef(g)), std_error = unname(sqrt(diag(vcov(g)))))
  }
)

write_json(ref, file.path("tests", "reference", "glmm_reml.json"), digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
