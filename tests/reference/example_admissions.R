# Reference values for crtstats.analyse_admissions on the shipped example trial
# (tests/test_analyse_admissions.py), read from crtstats/datasets/data/example_*.csv.
#
# Person level: follow-up service users with their team's arm, stratum and pre-period
# admission proportion (pre_prop). Team level: follow-up counts with exposure n_users
# and the team's log pre-period rate (0.5 added to a zero pre-period count).
#
# * glmm_admitted: glmer(admitted ~ arm + stratum + pre_prop + (1 | team_id)), Laplace,
#   strict controls (PIRLS and bobyqa run to convergence) as in glmm.R; and the same
#   model in glmmTMB (Laplace, exact gradients), whose standard errors come from the
#   exact Hessian, not lme4's finite-difference one. These are the maximum-likelihood
#   fits; the primary analysis is glmm_admitted_reml: glmmTMB(..., REML = TRUE), the
#   Laplace restricted likelihood, with nlminb run to a relative tolerance of 1e-14.
# * prop_adjusted / rate_adjusted: the two-stage residual method (Hayes and Moulton
#   2017, ch. 10) as in cluster_level.R, log ratio with 25 - 2 - 8 df.
# * nb_*: MASS::glm.nb with offset log(n_users), adjusted for stratum and the log
#   pre-period rate.
#
# Run from the repository root: Rscript tests/reference/example_admissions.R

suppressPackageStartupMessages({
  library(glmmTMB)
  library(jsonlite)
  library(lme4)
  library(MASS)
})

rd <- function(name) read.csv(file.path("crtstats", "datasets", "data",
                                        paste0("example_", name, ".csv")),
                              stringsAsFactors = FALSE)
teams <- rd("teams")
admissions <- rd("admissions")
service_use <- rd("service_use")

pre <- admissions[admissions$period == "pre", ]
pre_prop <- tapply(pre$admitted, pre$team_id, mean)
adm <- merge(admissions[admissions$period == "follow_up", ], teams[, c("team_id", "arm", "stratum")],
             by = "team_id")
adm$pre_prop <- as.vector(pre_prop[adm$team_id])
adm <- adm[order(adm$team_id, adm$person_id), ]

su_pre <- service_use[service_use$period == "pre", ]
su <- merge(service_use[service_use$period == "follow_up", ], teams[, c("team_id", "arm", "stratum")],
            by = "team_id")
su <- su[order(su$team_id), ]
m <- match(su$team_id, su_pre$team_id)
su$n_users_pre <- su_pre$n_users[m]
for (count in c("admissions", "bed_days", "readmissions")) {
  su[[paste0("pre_", count)]] <- su_pre[[count]][m]
}

out <- list()
tight <- glm.control(epsilon = 1e-14, maxit = 100)
log_ratio <- function(O, E, arm, df) {
  v <- log(O / E)
  tt <- t.test(v[arm == "intervention"], v[arm == "control"], var.equal = TRUE)
  est <- unname(tt$estimate[1] - tt$estimate[2])
  se <- unname(tt$stderr)
  list(estimate = est, std_error = se, df = df, pvalue = 2 * pt(-abs(est / se), df))
}
q <- 7 + 1  # seven stratum contrasts and one pre-period covariate, constant within teams

stage1 <- glm(admitted ~ factor(stratum) + pre_prop, family = binomial, data = adm,
              control = tight)
O <- tapply(adm$admitted, adm$team_id, sum)
E <- tapply(fitted(stage1), adm$team_id, sum)
arm_of <- tapply(adm$arm, adm$team_id, function(a) a[1])
out$prop_adjusted <- list(log_ratio = log_ratio(O, E, arm_of, 25 - 2 - q))

su$log_pre_admissions_rate <- log(ifelse(su$pre_admissions == 0, 0.5, su$pre_admissions) /
                                  su$n_users_pre)
stage1 <- glm(admissions ~ factor(stratum) + log_pre_admissions_rate, family = poisson,
              offset = log(n_users), data = su, control = tight)
out$rate_adjusted <- list(log_ratio = log_ratio(su$admissions, fitted(stage1), su$arm,
                                                25 - 2 - q))

su$arm <- factor(su$arm, levels = c("control", "intervention"))
for (count in c("admissions", "bed_days", "readmissions")) {
  pre_count <- su[[paste0("pre_", count)]]
  su$log_pre <- log(ifelse(pre_count == 0, 0.5, pre_count) / su$n_users_pre)
  fit <- glm.nb(as.formula(paste(count, "~ arm + stratum + log_pre + offset(log(n_users))")),
                data = su, control = glm.control(epsilon = 1e-12, maxit = 100))
  out[[paste0("nb_", count)]] <- list(
    coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))), theta = fit$theta,
    terms = names(coef(fit)))
}

adm$arm <- factor(adm$arm, levels = c("control", "intervention"))
strict <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
glmm_fit <- glmer(admitted ~ arm + stratum + pre_prop + (1 | team_id), data = adm,
                  family = binomial, control = strict)
out$glmm_admitted <- list(coef = unname(fixef(glmm_fit)), terms = names(fixef(glmm_fit)),
                          se = unname(sqrt(diag(as.matrix(vcov(glmm_fit))))),
                          team_sd = attr(VarCorr(glmm_fit)$team_id, "stddev")[[1]],
                          loglik = as.numeric(logLik(glmm_fit)),
                          singular = isSingular(glmm_fit))
tmb_fit <- glmmTMB(admitted ~ arm + stratum + pre_prop + (1 | team_id), data = adm,
                   family = binomial)  # nlminb's default rel.tol 1e-10; tighter stops with code 7
out$glmm_admitted_tmb <- list(coef = unname(fixef(tmb_fit)$cond),
                              se = unname(sqrt(diag(vcov(tmb_fit)$cond))),
                              team_sd = attr(VarCorr(tmb_fit)$cond$team_id, "stddev")[[1]],
                              loglik = as.numeric(logLik(tmb_fit)))

# the primary analysis: the same model by the Laplace restricted likelihood
reml_fit <- glmmTMB(admitted ~ arm + stratum + pre_prop + (1 | team_id), data = adm,
                    family = binomial, REML = TRUE,
                    control = glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4,
                                                            rel.tol = 1e-14)))
out$glmm_admitted_reml <- list(coef = unname(fixef(reml_fit)$cond),
                               terms = names(fixef(reml_fit)$cond),
                               se = unname(sqrt(diag(vcov(reml_fit)$cond))),
                               team_sd = attr(VarCorr(reml_fit)$cond$team_id, "stddev")[[1]],
                               loglik = as.numeric(logLik(reml_fit)),
                               max_gradient = max(abs(reml_fit$obj$gr(reml_fit$fit$par))))

write_json(out, "tests/reference/example_admissions.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
